package rollout

import (
	"errors"
	"sort"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/imagemode/imagemode/internal/wellknown"
)

// Membership rules (as in the reference, helpers.GetPoolsForNode):
//
//  1. Windows nodes (kubernetes.io/os=windows) belong to no pool.
//  2. A pool selects a node when its spec.nodeSelector is set, not empty, valid and matches the node's labels.
//  3. Pools are classified by name: master, worker, anything else is custom.
//  4. More than one custom pool: an error (MultipleCustomPoolsError); the node is left alone.
//  5. master selects it: [master] (a custom pool also selecting it is ignored: master wins).
//  6. One custom pool: [custom, worker] (worker only if it selects the node too): custom wins over worker.
//  7. Otherwise [worker], or nothing.
//
// The first pool is the node's primary pool: the one whose config it runs and whose status counts it.

// IsWindows reports whether node runs Windows; such nodes are never managed.
func IsWindows(node *corev1.Node) bool {
	return node.Labels[corev1.LabelOSStable] == "windows"
}

// PoolSet is a set of pools with their node selectors parsed once, for deciding many nodes' membership.
type PoolSet struct {
	pools []selectingPool
}

type selectingPool struct {
	pool     *mcfgv1.MachineConfigPool
	selector labels.Selector // nil: selects nothing
}

// NewPoolSet parses the node selectors of pools. A pool with no, an empty or an invalid selector selects no
// node.
func NewPoolSet(pools []*mcfgv1.MachineConfigPool) *PoolSet {
	set := &PoolSet{pools: make([]selectingPool, 0, len(pools))}
	for _, p := range pools {
		set.pools = append(set.pools, selectingPool{pool: p, selector: nodeSelector(p)})
	}
	sort.Slice(set.pools, func(i, j int) bool { return set.pools[i].pool.Name < set.pools[j].pool.Name })
	return set
}

func nodeSelector(p *mcfgv1.MachineConfigPool) labels.Selector {
	sel := p.Spec.NodeSelector
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		return nil
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || s.Empty() {
		return nil
	}
	return s
}

// Selects reports whether pool (a member of the set) selects node by its node selector alone.
func (s *PoolSet) Selects(pool string, node *corev1.Node) bool {
	for _, p := range s.pools {
		if p.pool.Name == pool {
			return p.selector != nil && p.selector.Matches(labels.Set(node.Labels))
		}
	}
	return false
}

// ForNode returns the pools node belongs to, its primary pool first; none for a Windows node or a node no
// pool selects; a *MultipleCustomPoolsError when more than one custom pool selects it.
func (s *PoolSet) ForNode(node *corev1.Node) ([]*mcfgv1.MachineConfigPool, error) {
	if IsWindows(node) {
		return nil, nil
	}
	var master, worker *mcfgv1.MachineConfigPool
	var custom []*mcfgv1.MachineConfigPool
	set := labels.Set(node.Labels)
	for _, p := range s.pools {
		if p.selector == nil || !p.selector.Matches(set) {
			continue
		}
		switch p.pool.Name {
		case wellknown.MasterPool:
			master = p.pool
		case wellknown.WorkerPool:
			worker = p.pool
		default:
			custom = append(custom, p.pool)
		}
	}
	switch {
	case len(custom) > 1:
		names := make([]string, len(custom))
		for i, p := range custom {
			names[i] = p.Name
		}
		return nil, &MultipleCustomPoolsError{Node: node.Name, Pools: names}
	case master != nil:
		return []*mcfgv1.MachineConfigPool{master}, nil
	case len(custom) == 1 && worker != nil:
		return []*mcfgv1.MachineConfigPool{custom[0], worker}, nil
	case len(custom) == 1:
		return custom, nil
	case worker != nil:
		return []*mcfgv1.MachineConfigPool{worker}, nil
	}
	return nil, nil
}

// PoolsForNode returns the pools node belongs to, its primary pool first (see ForNode).
func PoolsForNode(node *corev1.Node, pools []*mcfgv1.MachineConfigPool) ([]*mcfgv1.MachineConfigPool, error) {
	return NewPoolSet(pools).ForNode(node)
}

// NodesForPool returns the nodes whose primary pool is pool, and the membership errors of nodes the pool
// selects but that belong to no pool because more than one custom pool selects them.
func NodesForPool(pool string, nodes []*corev1.Node, pools *PoolSet) ([]*corev1.Node, []*MultipleCustomPoolsError) {
	var out []*corev1.Node
	var errs []*MultipleCustomPoolsError
	for _, n := range nodes {
		if !pools.Selects(pool, n) {
			continue
		}
		member, err := pools.ForNode(n)
		if err != nil {
			var multi *MultipleCustomPoolsError
			if errors.As(err, &multi) {
				errs = append(errs, multi)
			}
			continue
		}
		if len(member) > 0 && member[0].Name == pool {
			out = append(out, n)
		}
	}
	return out, errs
}
