package rollout

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"

	rolloutsv1 "github.com/imagemode/imagemode/api/rollouts/v1alpha1"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/render/progressive"
)

// A pool named by a RolloutPolicy rolls out in the policy's waves: Decide asks progressive.Decide which of
// the pool's nodes may start now (candidate selection is restricted to them, within the wave's
// maxUnavailable), which go back to what they ran before, and which health checks the nodes it targets get;
// the policy's status is written before the nodes move (it is the rollout's memory: a pass whose status
// write fails moves nobody). A pool no policy names behaves exactly as without them.

// HoldInvalidPolicy: the pool's RolloutPolicy is invalid, or several name the pool.
const HoldInvalidPolicy Hold = "the pool's RolloutPolicy is invalid"

// PolicyDecision is what a pass decides for the pool's RolloutPolicy.
type PolicyDecision struct {
	Policy *rolloutsv1.RolloutPolicy
	// Status is the policy's new status (compare with Policy.Status before writing).
	Status       rolloutsv1.RolloutPolicyStatus
	RequeueAfter time.Duration
}

// PolicyFor returns the RolloutPolicy naming pool (nil when none); several are an error naming them.
func PolicyFor(pool string, policies []*rolloutsv1.RolloutPolicy) (*rolloutsv1.RolloutPolicy, error) {
	var found []*rolloutsv1.RolloutPolicy
	for _, p := range policies {
		if p.Spec.MachineConfigPool.Name == pool && p.DeletionTimestamp == nil {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
		return found[0], nil
	}
	names := make([]string, len(found))
	for i, p := range found {
		names[i] = p.Name
	}
	sort.Strings(names)
	return nil, fmt.Errorf("pool %s is named by several RolloutPolicies (%s); none applies until one is left", pool, strings.Join(names, ", "))
}

// ProgressiveNodes describes the pool's nodes, in update order, as progressive.Decide reads them.
func ProgressiveNodes(nodes []*corev1.Node, mcns map[string]*mcfgv1.MachineConfigNode) []progressive.Node {
	sorted := SortForUpdate(nodes)
	out := make([]progressive.Node, len(sorted))
	for i, n := range sorted {
		a := n.Annotations
		pn := progressive.Node{
			Name:      n.Name,
			Labels:    n.Labels,
			Current:   progressive.Target{Config: a[wellknown.CurrentConfigAnnotation], Image: a[wellknown.CurrentImageAnnotation]},
			Desired:   progressive.Target{Config: a[wellknown.DesiredConfigAnnotation], Image: a[wellknown.DesiredImageAnnotation]},
			Done:      IsNodeDone(n),
			Ready:     IsNodeReady(n),
			Degraded:  IsNodeDegraded(n),
			Reason:    a[wellknown.ReasonAnnotation],
			Draining:  strings.HasPrefix(a[wellknown.DesiredDrainAnnotation], wellknown.DrainVerb+"-"),
			Rebooting: a[wellknown.PostConfigActionAnnotation] == wellknown.PostConfigActionRebooting,
		}
		if mcn := mcns[n.Name]; mcn != nil {
			updated := meta.FindStatusCondition(mcn.Status.Conditions, string(mcfgv1.MachineConfigNodeUpdated))
			pn.MCNUpdated = updated != nil && updated.Status == "True" && mcn.Status.ConfigVersion != nil &&
				mcn.Status.ConfigVersion.Current == pn.Desired.Config
			if c := meta.FindStatusCondition(mcn.Status.Conditions, string(mcfgv1.MachineConfigNodeNodeDegraded)); c != nil && c.Status == "True" {
				pn.MCNDegraded = c.Message
				if pn.MCNDegraded == "" {
					pn.MCNDegraded = "the MachineConfigNode reports NodeDegraded"
				}
			}
		}
		if raw := a[rolloutsv1.HealthReportAnnotation]; raw != "" {
			r := &rolloutsv1.HealthReport{}
			if err := json.Unmarshal([]byte(raw), r); err == nil {
				pn.Health = r
			}
		}
		out[i] = pn
	}
	return out
}

// decidePolicy runs the policy's decision for target t and returns the candidate filter and rollback
// targets for the node plan. It is called only when the pool may move.
func (d *Decision) decidePolicy(in Inputs) (allowed map[string]bool, maxUnavailable int, ok bool) {
	pt := progressive.Target{Config: d.Target.Config}
	if d.Target.Layered {
		pt.Image = d.Target.Image
	}
	pd := progressive.Decide(progressive.Inputs{Policy: in.Policy, Target: pt,
		Nodes: ProgressiveNodes(in.Nodes, in.MachineConfigNodes), Now: in.Now.Time})
	d.Policy = &PolicyDecision{Policy: in.Policy, Status: pd.Status, RequeueAfter: pd.RequeueAfter}
	if pd.Err != nil {
		d.Hold, d.Err = HoldInvalidPolicy, pd.Err
		return nil, 0, false
	}
	allowed = make(map[string]bool, len(pd.Allowed))
	for _, n := range pd.Allowed {
		allowed[n] = true
	}
	if len(pd.Rollback) > 0 {
		d.rollback = make(map[string]Target, len(pd.Rollback))
		for name, t := range pd.Rollback {
			d.rollback[name] = Target{Config: t.Config, Layered: t.Image != "", Image: t.Image}
		}
	}
	if pd.HealthChecks != nil {
		raw, err := json.Marshal(pd.HealthChecks)
		if err == nil {
			d.healthChecks = string(raw)
		}
	}
	return allowed, pd.MaxUnavailable, true
}
