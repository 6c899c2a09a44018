package rollout

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	rolloutsv1 "github.com/imagemode/imagemode/api/rollouts/v1alpha1"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/render/progressive"
)

// Event reasons of the rollout (as in the reference).
const (
	// ReasonSetDesiredConfig: nodes of a pool that is not layered were targeted to its config.
	ReasonSetDesiredConfig = "SetDesiredConfig"
	// ReasonSetDesiredConfigAndOSImage: nodes of a layered pool were targeted to its config and image.
	ReasonSetDesiredConfigAndOSImage = "SetDesiredConfigAndOSImage"
	// ReasonCompleted: every node of the pool runs its config; status.configuration advanced.
	ReasonCompleted = "Completed"
	// ReasonMultipleCustomPools: a node is selected by more than one custom pool and is left alone.
	ReasonMultipleCustomPools = "MultipleCustomPools"
)

// cacheCatchUpDelay is how long a pass waits for the cache to show its own last node writes.
const cacheCatchUpDelay = 200 * time.Millisecond

// pendingExpiry bounds how long a write may stay unseen in the cache before it is ignored.
const pendingExpiry = 30 * time.Second

// Reconciler is the node controller: one pass per MachineConfigPool key.
type Reconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	Clock    clock.PassiveClock

	// pending remembers, per node, the resourceVersion a pass patched, until the cache shows a newer one:
	// deciding on a node the cache still shows as before the patch could exceed maxUnavailable.
	mu      sync.Mutex
	pending map[string]pendingWrite
}

type pendingWrite struct {
	staleVersion string
	at           time.Time
}

// scope is what one pass observed.
type scope struct {
	pool       *mcfgv1.MachineConfigPool
	nodes      []*corev1.Node
	membership []*MultipleCustomPoolsError
	// conflicting are the nodes of membership (no copies: read only).
	conflicting []*corev1.Node
	inputs      Inputs
}

// Reconcile runs one pass over a pool: observe, decide (Decide), act, report.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (ctrl.Result, error) {
	pool := &mcfgv1.MachineConfigPool{}
	if err := r.Client.Get(ctx, req.NamespacedName, pool); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if pool.DeletionTimestamp != nil || pool.Spec.Configuration.Name == "" {
		// Nothing to move nodes to until the render controller has rendered the pool (which requeues it).
		return ctrl.Result{}, nil
	}
	s, err := r.observe(ctx, pool)
	if err != nil {
		return ctrl.Result{}, err
	}
	if r.cacheBehind(s.nodes) {
		return ctrl.Result{RequeueAfter: cacheCatchUpDelay}, nil
	}
	d := Decide(s.inputs)
	r.reportMembership(s)
	// A RolloutPolicy's status is the rollout's memory (which waves started, when each became healthy): it
	// is written before the nodes move, so that a pass whose write fails (a conflict) moves nobody.
	if err := r.writePolicyStatus(ctx, d.Policy); err != nil {
		return requeueOnConflict(err)
	}
	if err := r.applyNodes(ctx, pool, &d); err != nil {
		return requeueOnConflict(err)
	}
	// The MachineConfigNodes and the pool status are independent: written at the same time.
	var mcnErr, statusErr error
	inParallel(2, func(i int) {
		if i == 0 {
			mcnErr = r.applyMachineConfigNodes(ctx, d.MachineConfigNodes)
		} else {
			statusErr = r.writeStatus(ctx, pool, d.Status, s.inputs.Layering)
		}
	})
	if err := errors.Join(mcnErr, statusErr); err != nil {
		return requeueOnConflict(err)
	}
	if d.Hold == HoldInvalidMaxUnavailable || d.Hold == HoldInvalidPolicy {
		if d.Policy != nil {
			r.Recorder.Eventf(d.Policy.Policy, pool, corev1.EventTypeWarning, "InvalidSpec", "Rollout", "%v", d.Err)
		}
		return ctrl.Result{}, reconcile.TerminalError(d.Err)
	}
	if d.Policy != nil && d.Policy.RequeueAfter > 0 {
		return ctrl.Result{RequeueAfter: d.Policy.RequeueAfter}, nil
	}
	return ctrl.Result{}, nil
}

// requeueOnConflict turns a conflict (this pass decided on an object that changed since: the cache was behind
// or someone else wrote) into a quiet retry once the cache has caught up; other errors retry with back-off.
func requeueOnConflict(err error) (ctrl.Result, error) {
	if apierrors.IsConflict(err) {
		return ctrl.Result{RequeueAfter: cacheCatchUpDelay}, nil
	}
	return ctrl.Result{}, err
}

// observe loads the pool's nodes, layering objects, MachineConfigNodes and the ControllerConfig. Lists come
// from the cache without copies: nothing here is mutated (Decide copies what it changes).
func (r *Reconciler) observe(ctx context.Context, pool *mcfgv1.MachineConfigPool) (*scope, error) {
	s := &scope{pool: pool}
	var pools mcfgv1.MachineConfigPoolList
	if err := r.Client.List(ctx, &pools, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing pools: %w", err)
	}
	var nodes corev1.NodeList
	if err := r.Client.List(ctx, &nodes, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	all := ptrs(nodes.Items)
	s.nodes, s.membership = NodesForPool(pool.Name, all, NewPoolSet(ptrs(pools.Items)))
	for _, e := range s.membership {
		for _, n := range all {
			if n.Name == e.Node {
				s.conflicting = append(s.conflicting, n)
			}
		}
	}

	layering, err := r.observeLayering(ctx, pool)
	if err != nil {
		return nil, err
	}
	var mcns mcfgv1.MachineConfigNodeList
	if err := r.Client.List(ctx, &mcns, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing MachineConfigNodes: %w", err)
	}
	byName := make(map[string]*mcfgv1.MachineConfigNode, len(mcns.Items))
	for i := range mcns.Items {
		byName[mcns.Items[i].Name] = &mcns.Items[i]
	}
	cc := &mcfgv1.ControllerConfig{}
	switch err := r.Client.Get(ctx, types.NamespacedName{Name: wellknown.ControllerConfigName}, cc); {
	case apierrors.IsNotFound(err):
		cc = nil
	case err != nil:
		return nil, fmt.Errorf("reading ControllerConfig: %w", err)
	}
	var policies rolloutsv1.RolloutPolicyList
	if err := r.Client.List(ctx, &policies); err != nil {
		return nil, fmt.Errorf("listing RolloutPolicies: %w", err)
	}
	policy, policyErr := PolicyFor(pool.Name, ptrs(policies.Items))
	s.inputs = Inputs{
		Pool: pool, Nodes: s.nodes, Layering: layering, MachineConfigNodes: byName, ControllerConfig: cc,
		Now: metav1.NewTime(r.Clock.Now()), Policy: policy, PolicyErr: policyErr,
	}
	return s, nil
}

func (r *Reconciler) observeLayering(ctx context.Context, pool *mcfgv1.MachineConfigPool) (*Layering, error) {
	var moscs mcfgv1.MachineOSConfigList
	if err := r.Client.List(ctx, &moscs); err != nil {
		return nil, fmt.Errorf("listing MachineOSConfigs: %w", err)
	}
	configs := ptrs(moscs.Items)
	if LayeringFor(pool, configs, nil) == nil {
		return nil, nil
	}
	var mosbs mcfgv1.MachineOSBuildList
	if err := r.Client.List(ctx, &mosbs); err != nil {
		return nil, fmt.Errorf("listing MachineOSBuilds: %w", err)
	}
	return LayeringFor(pool, configs, ptrs(mosbs.Items)), nil
}

// cacheBehind reports whether the cache still shows a node as it was before this controller patched it, and
// forgets writes the cache has caught up with.
func (r *Reconciler) cacheBehind(nodes []*corev1.Node) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pending) == 0 {
		return false
	}
	now := r.Clock.Now()
	behind := false
	for _, n := range nodes {
		p, ok := r.pending[n.Name]
		if !ok {
			continue
		}
		if n.ResourceVersion == p.staleVersion && now.Sub(p.at) < pendingExpiry {
			behind = true
			continue
		}
		delete(r.pending, n.Name)
	}
	return behind
}

func (r *Reconciler) remember(node *corev1.Node) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == nil {
		r.pending = map[string]pendingWrite{}
	}
	r.pending[node.Name] = pendingWrite{staleVersion: node.ResourceVersion, at: r.Clock.Now()}
}

// applyNodes patches each changed node with only its changed annotations and taints (NodePatch), the
// patches of one pass in parallel (each is a round trip to the API server, and the next node of a rollout
// waits for the pass), then reports the newly targeted nodes with one event.
func (r *Reconciler) applyNodes(ctx context.Context, pool *mcfgv1.MachineConfigPool, d *Decision) error {
	errs := make([]error, len(d.NodeChanges))
	patched := make([]bool, len(d.NodeChanges))
	inParallel(len(d.NodeChanges), func(i int) {
		c := d.NodeChanges[i]
		patch, err := NodePatch(c)
		if err != nil {
			errs[i] = err
			return
		}
		if err := r.Client.Patch(ctx, c.Updated, client.RawPatch(types.MergePatchType, patch)); err != nil {
			errs[i] = fmt.Errorf("patching node %s: %w", c.Node.Name, err)
			return
		}
		r.remember(c.Node)
		patched[i] = true
	})
	var targeted []string
	for i, c := range d.NodeChanges {
		if patched[i] && c.Targeted {
			targeted = append(targeted, c.Node.Name)
		}
	}
	if len(targeted) > 0 {
		reason, what := ReasonSetDesiredConfig, "MachineConfig: "+d.Target.Config
		if d.Target.Layered {
			reason, what = ReasonSetDesiredConfigAndOSImage, what+" / Image: "+d.Target.Image
		}
		if len(targeted) == 1 {
			r.Recorder.Eventf(pool, nil, corev1.EventTypeNormal, reason, "Rollout", "Targeted node %s to %s", targeted[0], what)
		} else {
			r.Recorder.Eventf(pool, nil, corev1.EventTypeNormal, reason, "Rollout", "Set target for %d nodes to %s", len(targeted), what)
		}
		log.FromContext(ctx).Info("targeted nodes", "pool", pool.Name, "nodes", targeted, "config", d.Target.Config,
			"image", d.Target.Image, "capacity", d.Selection.Capacity, "waiting", len(d.Selection.Waiting))
	}
	return errors.Join(errs...)
}

func (r *Reconciler) applyMachineConfigNodes(ctx context.Context, changes []MachineConfigNodeChange) error {
	errs := make([]error, len(changes))
	inParallel(len(changes), func(i int) {
		c := changes[i]
		if c.Existing == nil {
			if err := r.Client.Create(ctx, c.Desired); err != nil && !apierrors.IsAlreadyExists(err) {
				errs[i] = fmt.Errorf("creating MachineConfigNode %s: %w", c.Desired.Name, err)
			}
			return
		}
		patch, err := MachineConfigNodeSpecPatch(c.Desired.Spec)
		if err != nil {
			errs[i] = err
			return
		}
		if err := r.Client.Patch(ctx, c.Desired, client.RawPatch(types.MergePatchType, patch)); err != nil {
			errs[i] = fmt.Errorf("updating MachineConfigNode %s: %w", c.Desired.Name, err)
		}
	})
	return errors.Join(errs...)
}

// maxParallelWrites bounds the writes one pass has in flight.
const maxParallelWrites = 8

// inParallel runs f(0) … f(n-1), at most maxParallelWrites at a time, and waits for them all.
func inParallel(n int, f func(i int)) {
	if n == 1 {
		f(0)
		return
	}
	sem := make(chan struct{}, maxParallelWrites)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}()
	}
	wg.Wait()
}

// writeStatus writes the pool status when it changed, in one update of the status subresource guarded by
// the resourceVersion (other controllers own some conditions). It is an update, not a patch: zero counts
// must be stored too, since `oc get mcp` prints them (a patch of a field that stays 0 would leave it out).
func (r *Reconciler) writeStatus(ctx context.Context, pool *mcfgv1.MachineConfigPool, status mcfgv1.MachineConfigPoolStatus, l *Layering) error {
	if equality.Semantic.DeepEqual(pool.Status, status) {
		return nil
	}
	updated := pool.DeepCopy()
	updated.Status = status
	if err := r.Client.Status().Update(ctx, updated); err != nil {
		return fmt.Errorf("writing status of pool %s: %w", pool.Name, err)
	}
	if status.Configuration.Name != pool.Status.Configuration.Name && status.Configuration.Name != "" {
		r.Recorder.Eventf(pool, nil, corev1.EventTypeNormal, ReasonCompleted, "Rollout", "Pool %s has completed update to %s",
			pool.Name, UpdateLine(pool, l))
	}
	return nil
}

// writePolicyStatus writes the RolloutPolicy's status when it changed (an update guarded by the
// resourceVersion: the status is the rollout's memory) and records the events between the two.
func (r *Reconciler) writePolicyStatus(ctx context.Context, pd *PolicyDecision) error {
	if pd == nil || equality.Semantic.DeepEqual(pd.Policy.Status, pd.Status) {
		return nil
	}
	updated := pd.Policy.DeepCopy()
	updated.Status = pd.Status
	if err := r.Client.Status().Update(ctx, updated); err != nil {
		return fmt.Errorf("writing status of RolloutPolicy %s: %w", pd.Policy.Name, err)
	}
	for _, e := range progressive.Events(pd.Policy.Status, pd.Status) {
		r.Recorder.Eventf(updated, nil, e.Type, e.Reason, "Rollout", "%s", e.Message)
	}
	log.FromContext(ctx).V(1).Info("rollout policy", "policy", pd.Policy.Name, "phase", pd.Status.Phase, "message", pd.Status.Message)
	return nil
}

func poolForPolicy(_ context.Context, obj client.Object) []reconcile.Request {
	p, ok := obj.(*rolloutsv1.RolloutPolicy)
	if !ok {
		return nil
	}
	return poolRequest(p.Spec.MachineConfigPool.Name)
}

// reportMembership reports nodes the pool selects that belong to no pool (several custom pools select them).
func (r *Reconciler) reportMembership(s *scope) {
	for i, e := range s.membership {
		node := s.conflicting[i]
		r.Recorder.Eventf(node, s.pool, corev1.EventTypeWarning, ReasonMultipleCustomPools, "Rollout", "%s", e.Error())
		r.Recorder.Eventf(s.pool, node, corev1.EventTypeWarning, ReasonMultipleCustomPools, "Rollout", "%s", e.Error())
	}
}

// SetupWithManager registers the controller. Pools, the nodes they select (before and after a change),
// their MachineOSConfigs, MachineOSBuilds and MachineConfigNodes, and the ControllerConfig lead to pool keys.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("rollout").
		For(&mcfgv1.MachineConfigPool{}).
		Watches(&mcfgv1.MachineConfigPool{}, handler.Funcs{
			CreateFunc: func(ctx context.Context, _ EventCreate, q Queue) { r.enqueueAllPools(ctx, q) },
			DeleteFunc: func(ctx context.Context, _ EventDelete, q Queue) { r.enqueueAllPools(ctx, q) },
			UpdateFunc: func(ctx context.Context, e EventUpdate, q Queue) {
				if nodeSelectorChanged(e.ObjectOld, e.ObjectNew) {
					r.enqueueAllPools(ctx, q)
				}
			},
		}).
		Watches(&corev1.Node{}, r.nodeHandler(), builder.WithPredicates(NodeRolloutPredicate{})).
		Watches(&mcfgv1.MachineOSConfig{}, handler.EnqueueRequestsFromMapFunc(r.poolForMachineOSConfig)).
		Watches(&mcfgv1.MachineOSBuild{}, handler.EnqueueRequestsFromMapFunc(r.poolForMachineOSBuild)).
		Watches(&mcfgv1.MachineConfigNode{}, handler.EnqueueRequestsFromMapFunc(poolForMachineConfigNode)).
		Watches(&mcfgv1.ControllerConfig{}, handler.EnqueueRequestsFromMapFunc(r.allPools)).
		Watches(&rolloutsv1.RolloutPolicy{}, handler.EnqueueRequestsFromMapFunc(poolForPolicy)).
		Complete(r)
}

func ptrs[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}
