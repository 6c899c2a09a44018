package rollout

import (
	"fmt"
	"sort"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos/osbuild"
	"github.com/imagemode/imagemode/render/poolstatus"
)

// Pool status rules (the reference's calculateStatus):
//
//   - machineCount: the pool's nodes; updatedMachineCount: nodes done at the pool's target (IsDoneAt);
//     readyMachineCount: those of them that are also ready; unavailableMachineCount: IsUnavailableForUpdate;
//     degradedMachineCount: nodes whose daemon reports Degraded or Unreconcilable.
//   - All updated (every node updated and ready, none unavailable, and for a layered pool the build for the
//     pool's config is ready): Updated=True "All nodes are updated with <line>", Updating=False, and only then
//     status.configuration = spec.configuration. Otherwise Updated=False and Updating=True "All nodes are
//     updating to <line>", or, for a paused pool, Updating=False "Pool is paused; will not update to <line>".
//     <line> is "MachineConfig <config>", plus " / Image <image>" for a layered pool with an image.
//   - A layered pool that is not all updated says what it waits for (see layeredUpdating).
//   - NodeDegraded=True when a node is degraded, reason "<n> nodes are reporting degraded status on sync",
//     message the nodes' reasons. Degraded=True when NodeDegraded, RenderDegraded (render controller) or
//     ImageBuildDegraded (build service) is True, or the pool's build failed.
//
// Unlike the reference, a paused layered pool always reports Updating=False, whatever its build does: the
// docs' `oc get mcp` of a paused pool whose image is being rebuilt shows UPDATING False.

// NotYetSet is the MachineConfigNode desired config of a node that has none yet.
const NotYetSet = "not-yet-set"

// NodeDegradedReasonFormat is the reason of NodeDegraded=True (with the number of degraded nodes).
const NodeDegradedReasonFormat = "%d nodes are reporting degraded status on sync"

// BuildFailedMessage is the Degraded message when only the image build failed.
const BuildFailedMessage = "Custom OS image build failed"

// kubeAPIServerServingCA is the controller certificate bundle whose expiry the pool status reports.
const kubeAPIServerServingCA = "KubeAPIServerServingCAData"

// StatusInputs is what a pool's status is computed from.
type StatusInputs struct {
	Pool *mcfgv1.MachineConfigPool
	// Nodes are the pool's nodes as they are after this pass's changes.
	Nodes []*corev1.Node
	// Layering is the pool's MachineOSConfig and build; nil when the pool is not layered.
	Layering *Layering
	// ControllerConfig supplies certificate expiries; may be nil.
	ControllerConfig *mcfgv1.ControllerConfig
	// Now stamps conditions that change.
	Now metav1.Time
}

// Counts are a pool's machine counts.
type Counts struct {
	Machines, Updated, Ready, Unavailable, Degraded int32
}

// CountMachines counts nodes against target t.
func CountMachines(nodes []*corev1.Node, t Target) (Counts, []*corev1.Node) {
	c := Counts{Machines: int32(len(nodes))}
	var degraded []*corev1.Node
	for _, n := range nodes {
		if IsDoneAt(n, t) {
			c.Updated++
			if IsNodeReady(n) {
				c.Ready++
			}
		}
		if IsUnavailableForUpdate(n) {
			c.Unavailable++
		}
		if IsNodeDegraded(n) {
			degraded = append(degraded, n)
		}
	}
	c.Degraded = int32(len(degraded))
	sort.Slice(degraded, func(i, j int) bool { return degraded[i].Name < degraded[j].Name })
	return c, degraded
}

// UpdateLine names what a pool moves to: "MachineConfig <config>[ / Image <image>]".
func UpdateLine(pool *mcfgv1.MachineConfigPool, l *Layering) string {
	line := "MachineConfig " + pool.Spec.Configuration.Name
	if l != nil && l.Image() != "" {
		line += " / Image " + l.Image()
	}
	return line
}

// CalculateStatus returns the pool's new status: the old one with the counts, certificate expiries,
// observedGeneration and the Updated, Updating, NodeDegraded and Degraded conditions recomputed, and
// configuration advanced when every node is updated. Conditions owned by other controllers are kept.
func CalculateStatus(in StatusInputs) mcfgv1.MachineConfigPoolStatus {
	pool := in.Pool
	st := *pool.Status.DeepCopy()
	counts, degraded := CountMachines(in.Nodes, in.Layering.TargetFor(pool))
	st.ObservedGeneration = pool.Generation
	st.MachineCount, st.UpdatedMachineCount, st.ReadyMachineCount = counts.Machines, counts.Updated, counts.Ready
	st.UnavailableMachineCount, st.DegradedMachineCount = counts.Unavailable, counts.Degraded
	st.CertExpirys = certExpirys(in.ControllerConfig)

	set := func(t mcfgv1.MachineConfigPoolConditionType, s corev1.ConditionStatus, reason, msg string) {
		poolstatus.SetCondition(&st, mcfgv1.MachineConfigPoolCondition{Type: t, Status: s, Reason: reason, Message: msg}, in.Now)
	}
	line := UpdateLine(pool, in.Layering)
	buildPending := in.Layering != nil && !in.Layering.Ready()
	allUpdated := counts.Updated == counts.Machines && counts.Ready == counts.Machines && counts.Unavailable == 0 && !buildPending
	switch {
	case allUpdated:
		set(mcfgv1.MachineConfigPoolUpdated, corev1.ConditionTrue, "", "All nodes are updated with "+line)
		set(mcfgv1.MachineConfigPoolUpdating, corev1.ConditionFalse, "", "")
		st.Configuration = *pool.Spec.Configuration.DeepCopy()
	case pool.Spec.Paused:
		set(mcfgv1.MachineConfigPoolUpdated, corev1.ConditionFalse, "", "")
		set(mcfgv1.MachineConfigPoolUpdating, corev1.ConditionFalse, "", "Pool is paused; will not update to "+line)
	default:
		set(mcfgv1.MachineConfigPoolUpdated, corev1.ConditionFalse, "", "")
		set(mcfgv1.MachineConfigPoolUpdating, corev1.ConditionTrue, "", "All nodes are updating to "+line)
	}

	nodeDegraded := len(degraded) > 0
	nodeDegradedMsg := ""
	if nodeDegraded {
		var reasons []string
		for _, n := range degraded {
			if r := n.Annotations[wellknown.ReasonAnnotation]; r != "" {
				reasons = append(reasons, fmt.Sprintf("Node %s is reporting: %q", n.Name, r))
			}
		}
		nodeDegradedMsg = strings.Join(reasons, ", ")
		set(mcfgv1.MachineConfigPoolNodeDegraded, corev1.ConditionTrue, fmt.Sprintf(NodeDegradedReasonFormat, len(degraded)), nodeDegradedMsg)
	} else {
		set(mcfgv1.MachineConfigPoolNodeDegraded, corev1.ConditionFalse, "", "")
	}
	renderDegraded := poolstatus.IsTrue(&pool.Status, mcfgv1.MachineConfigPoolRenderDegraded)

	if in.Layering != nil && !allUpdated {
		nonBuildDegraded := renderDegraded || nodeDegraded || poolstatus.IsTrue(&pool.Status, mcfgv1.MachineConfigPoolPinnedImageSetsDegraded)
		if s, msg, ok := layeredUpdating(in.Layering, pool.Spec.Paused, nonBuildDegraded); ok {
			set(mcfgv1.MachineConfigPoolUpdating, s, "", msg)
		}
	}

	buildDegraded := isBuildDegraded(pool, in.Layering)
	switch {
	case nodeDegraded:
		set(mcfgv1.MachineConfigPoolDegraded, corev1.ConditionTrue, "", nodeDegradedMsg)
	case buildDegraded:
		set(mcfgv1.MachineConfigPoolDegraded, corev1.ConditionTrue, "", BuildFailedMessage)
	case renderDegraded || poolstatus.IsTrue(&pool.Status, mcfgv1.MachineConfigPoolPinnedImageSetsDegraded):
		set(mcfgv1.MachineConfigPoolDegraded, corev1.ConditionTrue, "", "")
	default:
		set(mcfgv1.MachineConfigPoolDegraded, corev1.ConditionFalse, "", "")
	}
	return st
}

// layeredUpdating is the Updating condition of a layered pool that is not all updated: what it waits for.
func layeredUpdating(l *Layering, paused, nonBuildDegraded bool) (corev1.ConditionStatus, string, bool) {
	state := l.BuildState()
	if paused {
		if !l.HasBuild() {
			return corev1.ConditionFalse, fmt.Sprintf("Pool is paused; waiting for a new OS image build to start (mosc: %s)", l.Config.Name), true
		}
		msg := map[osbuild.State]string{
			osbuild.StateInitial:     "Pool is paused; OS image build has been created but not yet started (mosb: %s)",
			osbuild.StatePrepared:    "Pool is paused; OS image build has been prepared but will not rollout (mosb: %s)",
			osbuild.StateBuilding:    "Pool is paused; OS image build in progress (mosb: %s)",
			osbuild.StateFailed:      "Pool is paused; OS image build failed (mosb: %s)",
			osbuild.StateInterrupted: "Pool is paused; OS image build was interrupted (mosb: %s)",
			osbuild.StateSucceeded:   "Pool is paused; OS image build completed successfully (mosb: %s)",
		}[state]
		return corev1.ConditionFalse, fmt.Sprintf(msg, l.Build.Name), true
	}
	switch {
	case nonBuildDegraded:
		return corev1.ConditionFalse, "Pool update paused due to degraded condition", true
	case !l.HasBuild():
		return corev1.ConditionTrue, fmt.Sprintf("Pool is waiting for a new OS image build to start (mosc: %s)", l.Config.Name), true
	case state == osbuild.StateInitial || state == osbuild.StatePrepared:
		return corev1.ConditionTrue, fmt.Sprintf("Pool is waiting for OS image build to start (mosb: %s)", l.Build.Name), true
	case state == osbuild.StateBuilding:
		return corev1.ConditionTrue, fmt.Sprintf("Pool is waiting for OS image build to complete (mosb: %s)", l.Build.Name), true
	case state == osbuild.StateFailed:
		return corev1.ConditionFalse, fmt.Sprintf("Pool update stopped due to OS image build failure (mosb: %s)", l.Build.Name), true
	case state == osbuild.StateInterrupted:
		return corev1.ConditionFalse, fmt.Sprintf("Pool update stopped due to OS image build being interrupted (mosb: %s)", l.Build.Name), true
	case state == osbuild.StateSucceeded:
		return corev1.ConditionTrue, fmt.Sprintf("Pool is waiting for nodes to apply OS image (mosb: %s)", l.Build.Name), true
	}
	return "", "", false
}

// isBuildDegraded: the pool's build failed, or the build service reports ImageBuildDegraded and no newer
// build is under way or done.
func isBuildDegraded(pool *mcfgv1.MachineConfigPool, l *Layering) bool {
	if l == nil {
		return poolstatus.IsTrue(&pool.Status, mcfgv1.MachineConfigPoolImageBuildDegraded)
	}
	state := l.BuildState()
	if l.HasBuild() && state == osbuild.StateFailed {
		return true
	}
	if l.HasBuild() && (state.IsTransient() || state == osbuild.StateSucceeded) {
		return false
	}
	return poolstatus.IsTrue(&pool.Status, mcfgv1.MachineConfigPoolImageBuildDegraded)
}

func certExpirys(cc *mcfgv1.ControllerConfig) []mcfgv1.CertExpiry {
	if cc == nil {
		return nil
	}
	var out []mcfgv1.CertExpiry
	for _, c := range cc.Status.ControllerCertificates {
		if c.BundleFile == kubeAPIServerServingCA {
			out = append(out, mcfgv1.CertExpiry{Bundle: c.BundleFile, Subject: c.Subject, Expiry: c.NotAfter})
		}
	}
	return out
}
