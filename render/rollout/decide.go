package rollout

import (
	"reflect"
	"sort"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	rolloutsv1 "github.com/imagemode/imagemode/api/rollouts/v1alpha1"
	"github.com/imagemode/imagemode/internal/wellknown"
)

// Inputs is everything one pass over a pool depends on.
type Inputs struct {
	Pool *mcfgv1.MachineConfigPool
	// Nodes are the nodes whose primary pool is Pool.
	Nodes []*corev1.Node
	// Layering is the pool's MachineOSConfig and build; nil when the pool is not layered.
	Layering *Layering
	// MachineConfigNodes are the existing MachineConfigNodes, by name (= node name).
	MachineConfigNodes map[string]*mcfgv1.MachineConfigNode
	// ControllerConfig supplies certificate expiries; may be nil.
	ControllerConfig *mcfgv1.ControllerConfig
	// Now stamps conditions that change.
	Now metav1.Time
	// Policy is the RolloutPolicy naming the pool (nil when none); PolicyErr says why none applies when
	// several name it.
	Policy    *rolloutsv1.RolloutPolicy
	PolicyErr error
}

// Hold says why a pass changes no node.
type Hold string

// Reasons a pass changes no node (status is still written).
const (
	HoldNone                  Hold = ""
	HoldPaused                Hold = "pool is paused"
	HoldWaitingForBuild       Hold = "waiting for the pool's OS image build"
	HoldInvalidMaxUnavailable Hold = "spec.maxUnavailable is invalid"
)

// NodeChange is one node's update: Updated is a copy of Node with new annotations and taints.
type NodeChange struct {
	Node    *corev1.Node
	Updated *corev1.Node
	// Targeted is set when the desired annotations change (a newly targeted node).
	Targeted bool
	// TaintsChanged is set when the UpdateInProgress taint is added or removed.
	TaintsChanged bool
}

// MachineConfigNodeChange creates (Existing nil) or updates the spec of one MachineConfigNode.
type MachineConfigNodeChange struct {
	Existing *mcfgv1.MachineConfigNode
	Desired  *mcfgv1.MachineConfigNode
}

// Decision is what one pass does.
type Decision struct {
	// Target is what nodes are moved to; meaningful only when Hold is HoldNone.
	Target Target
	Hold   Hold
	// Err explains HoldInvalidMaxUnavailable.
	Err       error
	Selection Selection
	// NodeChanges lists only nodes that change, in update order for newly targeted ones.
	NodeChanges []NodeChange
	// MachineConfigNodes lists only MachineConfigNodes to create or whose spec changes.
	MachineConfigNodes []MachineConfigNodeChange
	// Status is the pool's new status (compare with the old one before writing).
	Status mcfgv1.MachineConfigPoolStatus
	// Policy is the pool's RolloutPolicy decision (nil without a policy, or when the pool is held).
	Policy *PolicyDecision

	// rollback maps nodes the policy moves back to their previous target; healthChecks is the
	// HealthChecksAnnotation value of the nodes moved to Target ("" for none).
	rollback     map[string]Target
	healthChecks string
}

// Targeted returns the nodes the decision newly targets.
func (d *Decision) Targeted() []*corev1.Node {
	var out []*corev1.Node
	for _, c := range d.NodeChanges {
		if c.Targeted {
			out = append(out, c.Updated)
		}
	}
	return out
}

// Decide decides one pass over a pool: whether nodes may move (not paused; a layered pool's build ready;
// a valid maxUnavailable), which nodes to target (SelectCandidates), the UpdateInProgress taint of every
// node (present exactly while the node does not target the pool's config), the MachineConfigNode specs, and
// the pool status computed on the nodes as they are after the changes.
func Decide(in Inputs) Decision {
	var d Decision
	pool := in.Pool
	switch {
	case pool.Spec.Paused:
		d.Hold = HoldPaused
	case in.Layering != nil && !in.Layering.Ready():
		d.Hold = HoldWaitingForBuild
	case in.PolicyErr != nil:
		d.Hold, d.Err = HoldInvalidPolicy, in.PolicyErr
	}
	after := in.Nodes
	if d.Hold == HoldNone {
		maxUnavail, err := MaxUnavailable(pool, len(in.Nodes))
		if err != nil {
			d.Hold, d.Err = HoldInvalidMaxUnavailable, err
		} else {
			d.Target = Target{Config: pool.Spec.Configuration.Name}
			if in.Layering != nil {
				d.Target.Layered, d.Target.Image = true, in.Layering.Image()
			}
			if in.Policy == nil {
				d.Selection = SelectCandidates(in.Nodes, d.Target, maxUnavail)
				after = d.planNodes(in.Nodes)
			} else if allowed, waveMax, ok := d.decidePolicy(in); ok {
				d.Selection = SelectCandidatesAmong(in.Nodes, d.Target, waveMax, func(n *corev1.Node) bool { return allowed[n.Name] })
				after = d.planNodes(in.Nodes)
			}
		}
	}
	d.MachineConfigNodes = planMachineConfigNodes(pool.Name, after, in.MachineConfigNodes)
	d.Status = CalculateStatus(StatusInputs{Pool: pool, Nodes: after, Layering: in.Layering, ControllerConfig: in.ControllerConfig, Now: in.Now})
	return d
}

// planNodes targets the selected candidates and sets every node's taint; it returns the nodes as they are
// after the changes.
func (d *Decision) planNodes(nodes []*corev1.Node) []*corev1.Node {
	chosen := make(map[string]bool, len(d.Selection.Candidates))
	for _, n := range d.Selection.Candidates {
		chosen[n.Name] = true
	}
	after := make([]*corev1.Node, len(nodes))
	var targeted, others []NodeChange
	for i, n := range nodes {
		after[i] = n
		target := d.Target
		back, rollingBack := d.rollback[n.Name]
		if rollingBack {
			target = back
		}
		retarget := (chosen[n.Name] || rollingBack) && desiredAnnotationsDiffer(n, target)
		wantTaint := !chosen[n.Name] && !rollingBack && NeedsTargeting(n, d.Target)
		taintChange := wantTaint != HasUpdateInProgressTaint(n)
		if !retarget && !taintChange {
			continue
		}
		u := n.DeepCopy()
		if retarget {
			setDesired(u, target)
			if d.healthChecks != "" && !rollingBack {
				u.Annotations[rolloutsv1.HealthChecksAnnotation] = d.healthChecks
			}
		}
		if taintChange {
			setUpdateInProgressTaint(u, wantTaint)
		}
		after[i] = u
		c := NodeChange{Node: n, Updated: u, Targeted: retarget, TaintsChanged: taintChange}
		if retarget {
			targeted = append(targeted, c)
		} else {
			others = append(others, c)
		}
	}
	// Newly targeted nodes in selection order, then taint-only changes.
	order := make(map[string]int, len(d.Selection.Candidates))
	for i, n := range d.Selection.Candidates {
		order[n.Name] = i
	}
	sort.SliceStable(targeted, func(i, j int) bool { return order[targeted[i].Node.Name] < order[targeted[j].Node.Name] })
	d.NodeChanges = append(targeted, others...)
	return after
}

// desiredAnnotationsDiffer reports whether setting t would change node's desired annotations.
func desiredAnnotationsDiffer(n *corev1.Node, t Target) bool {
	a := n.Annotations
	if a[wellknown.DesiredConfigAnnotation] != t.Config {
		return true
	}
	img, has := a[wellknown.DesiredImageAnnotation]
	if t.Layered && t.Image != "" {
		return img != t.Image
	}
	return has
}

// setDesired writes t into node's desired annotations: desiredConfig, and desiredImage for a layered target
// (deleted otherwise, or when the MachineOSConfig has no image).
func setDesired(n *corev1.Node, t Target) {
	if n.Annotations == nil {
		n.Annotations = map[string]string{}
	}
	n.Annotations[wellknown.DesiredConfigAnnotation] = t.Config
	if t.Layered && t.Image != "" {
		n.Annotations[wellknown.DesiredImageAnnotation] = t.Image
	} else {
		delete(n.Annotations, wellknown.DesiredImageAnnotation)
	}
}

func setUpdateInProgressTaint(n *corev1.Node, want bool) {
	taint := UpdateInProgressTaint()
	kept := n.Spec.Taints[:0:0]
	for _, t := range n.Spec.Taints {
		if !t.MatchTaint(&taint) {
			kept = append(kept, t)
		}
	}
	if want {
		kept = append(kept, taint)
	}
	if len(kept) == 0 {
		kept = nil
	}
	n.Spec.Taints = kept
}

// planMachineConfigNodes returns the MachineConfigNodes to create or update so that each node's names the
// node, the pool and the node's desired config (NotYetSet when it has none).
func planMachineConfigNodes(pool string, nodes []*corev1.Node, existing map[string]*mcfgv1.MachineConfigNode) []MachineConfigNodeChange {
	var out []MachineConfigNodeChange
	for _, n := range nodes {
		desired := n.Annotations[wellknown.DesiredConfigAnnotation]
		if desired == "" {
			desired = NotYetSet
		}
		spec := mcfgv1.MachineConfigNodeSpec{
			Node:          mcfgv1.MCOObjectReference{Name: n.Name},
			Pool:          mcfgv1.MCOObjectReference{Name: pool},
			ConfigVersion: mcfgv1.MachineConfigNodeSpecMachineConfigVersion{Desired: desired},
		}
		cur := existing[n.Name]
		if cur != nil {
			if reflect.DeepEqual(cur.Spec, spec) {
				continue
			}
			u := cur.DeepCopy()
			u.Spec = spec
			out = append(out, MachineConfigNodeChange{Existing: cur, Desired: u})
			continue
		}
		mcn := &mcfgv1.MachineConfigNode{
			ObjectMeta: metav1.ObjectMeta{
				Name: n.Name,
				OwnerReferences: []metav1.OwnerReference{{
					APIVersion: "v1", Kind: "Node", Name: n.Name, UID: n.UID,
				}},
			},
			Spec: spec,
		}
		out = append(out, MachineConfigNodeChange{Desired: mcn})
	}
	return out
}
