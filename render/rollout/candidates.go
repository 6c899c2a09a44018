package rollout

import (
	"fmt"
	"sort"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// MaxUnavailable is how many of a pool's nodes may be unavailable for an update at once: spec.maxUnavailable
// as a number, or as a percentage of the pool's nodes rounded down; 1 when unset; never less than 1.
func MaxUnavailable(pool *mcfgv1.MachineConfigPool, nodeCount int) (int, error) {
	v := intstr.FromInt32(1)
	if pool.Spec.MaxUnavailable != nil {
		v = *pool.Spec.MaxUnavailable
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(&v, nodeCount, false)
	if err != nil {
		return 0, fmt.Errorf("reading spec.maxUnavailable %q of pool %s: %w", v.String(), pool.Name, err)
	}
	if n < 1 {
		n = 1
	}
	return n, nil
}

// Selection is the outcome of candidate selection for one pass.
type Selection struct {
	// Candidates are the nodes to target now, in order.
	Candidates []*corev1.Node
	// Waiting are ready nodes that need targeting but did not fit in the capacity (zone/age order).
	Waiting []*corev1.Node
	// Unavailable counts the nodes unavailable for an update (not ready, or working towards a target).
	Unavailable int
	// Failing counts the nodes that target t but whose daemon is failing: they use up capacity too.
	Failing int
	// Capacity is how many nodes could be targeted now: maxUnavailable minus unavailable and failing.
	Capacity int
}

// SelectCandidates picks the nodes to move to t now. Nodes already unavailable, and nodes that target t but
// fail, use up maxUnavailable; only ready, schedulable nodes that do not yet target t are candidates; when
// there are more candidates than capacity, they are ordered by SortForUpdate and cut.
func SelectCandidates(nodes []*corev1.Node, t Target, maxUnavailable int) Selection {
	return SelectCandidatesAmong(nodes, t, maxUnavailable, nil)
}

// SelectCandidatesAmong is SelectCandidates with the candidates restricted to the nodes allow accepts
// (every node when allow is nil): a RolloutPolicy's current wave. Unavailable and failing nodes are counted
// over all nodes.
func SelectCandidatesAmong(nodes []*corev1.Node, t Target, maxUnavailable int, allow func(*corev1.Node) bool) Selection {
	var sel Selection
	var candidates []*corev1.Node
	for _, n := range nodes {
		if IsUnavailableForUpdate(n) {
			sel.Unavailable++
		}
		if !NeedsTargeting(n, t) {
			if IsNodeMCDFailing(n) {
				sel.Failing++
			}
			continue
		}
		if !IsNodeReady(n) || (allow != nil && !allow(n)) {
			continue
		}
		candidates = append(candidates, n)
	}
	sel.Capacity = maxUnavailable - sel.Unavailable - sel.Failing
	if sel.Capacity <= 0 {
		sel.Capacity = 0
		sel.Waiting = candidates
		return sel
	}
	if sel.Capacity < len(candidates) {
		candidates = SortForUpdate(candidates)
		sel.Candidates, sel.Waiting = candidates[:sel.Capacity], candidates[sel.Capacity:]
		return sel
	}
	sel.Candidates = candidates
	return sel
}

// SortForUpdate returns nodes in update order: nodes with a topology.kubernetes.io/zone label first, by zone
// name, then by age (oldest first); nodes without a zone last, oldest first. Names break remaining ties so
// the order is stable. Updating one zone at a time lowers the chance of taking down every replica of an
// HA workload spread across zones.
func SortForUpdate(nodes []*corev1.Node) []*corev1.Node {
	out := make([]*corev1.Node, len(nodes))
	copy(out, nodes)
	sort.SliceStable(out, func(i, j int) bool {
		zi, iok := out[i].Labels[corev1.LabelTopologyZone]
		zj, jok := out[j].Labels[corev1.LabelTopologyZone]
		if iok != jok {
			return iok
		}
		if zi != zj {
			return zi < zj
		}
		ti, tj := out[i].CreationTimestamp, out[j].CreationTimestamp
		if !ti.Equal(&tj) {
			return ti.Before(&tj)
		}
		return out[i].Name < out[j].Name
	})
	return out
}
