package rollout

import (
	"context"
	"reflect"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	rolloutsv1 "github.com/imagemode/imagemode/api/rollouts/v1alpha1"
	"github.com/imagemode/imagemode/internal/wellknown"
)

// Short names of the event handler types.
type (
	// Queue is the controller's work queue.
	Queue = workqueue.TypedRateLimitingInterface[reconcile.Request]
	// EventCreate is an add event.
	EventCreate = event.TypedCreateEvent[client.Object]
	// EventUpdate is an update event.
	EventUpdate = event.TypedUpdateEvent[client.Object]
	// EventDelete is a delete event.
	EventDelete = event.TypedDeleteEvent[client.Object]
)

// NodeRolloutPredicate passes node events that can change a pool's decision or status: adds, deletes, and
// updates of labels (membership, zone), the annotations the rollout reads, schedulability, the
// UpdateInProgress taint or readiness. Heartbeats (condition timestamps, images, allocatable) do not pass.
type NodeRolloutPredicate struct {
	predicate.Funcs
}

// Update implements predicate.Predicate.
func (NodeRolloutPredicate) Update(e event.UpdateEvent) bool {
	oldNode, ok1 := e.ObjectOld.(*corev1.Node)
	newNode, ok2 := e.ObjectNew.(*corev1.Node)
	if !ok1 || !ok2 {
		return true
	}
	return NodeRolloutChanged(oldNode, newNode)
}

// NodeRolloutChanged reports whether anything the rollout reads differs between two versions of a node.
func NodeRolloutChanged(a, b *corev1.Node) bool {
	if !reflect.DeepEqual(a.Labels, b.Labels) || a.Spec.Unschedulable != b.Spec.Unschedulable {
		return true
	}
	for _, k := range [...]string{
		wellknown.CurrentConfigAnnotation, wellknown.DesiredConfigAnnotation, wellknown.CurrentImageAnnotation,
		wellknown.DesiredImageAnnotation, wellknown.StateAnnotation, wellknown.ReasonAnnotation,
		// A RolloutPolicy's node phases and health gate.
		wellknown.DesiredDrainAnnotation, wellknown.PostConfigActionAnnotation, rolloutsv1.HealthReportAnnotation,
	} {
		va, oka := a.Annotations[k]
		vb, okb := b.Annotations[k]
		if va != vb || oka != okb {
			return true
		}
	}
	return HasUpdateInProgressTaint(a) != HasUpdateInProgressTaint(b) || IsNodeReady(a) != IsNodeReady(b)
}

// nodeSelectorChanged reports whether a pool's node selector changed (membership of every pool may change).
func nodeSelectorChanged(oldObj, newObj client.Object) bool {
	a, ok1 := oldObj.(*mcfgv1.MachineConfigPool)
	b, ok2 := newObj.(*mcfgv1.MachineConfigPool)
	return !ok1 || !ok2 || !reflect.DeepEqual(a.Spec.NodeSelector, b.Spec.NodeSelector)
}

// nodeHandler enqueues the pools that select a node, before and after an update, so that the pool a node
// leaves recounts too.
func (r *Reconciler) nodeHandler() handler.EventHandler {
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e EventCreate, q Queue) { r.enqueuePoolsSelecting(ctx, q, e.Object) },
		UpdateFunc: func(ctx context.Context, e EventUpdate, q Queue) {
			r.enqueuePoolsSelecting(ctx, q, e.ObjectOld, e.ObjectNew)
		},
		DeleteFunc: func(ctx context.Context, e EventDelete, q Queue) { r.enqueuePoolsSelecting(ctx, q, e.Object) },
		GenericFunc: func(ctx context.Context, e event.TypedGenericEvent[client.Object], q Queue) {
			r.enqueuePoolsSelecting(ctx, q, e.Object)
		},
	}
}

func (r *Reconciler) enqueuePoolsSelecting(ctx context.Context, q Queue, objs ...client.Object) {
	var pools mcfgv1.MachineConfigPoolList
	if err := r.Client.List(ctx, &pools); err != nil {
		log.FromContext(ctx).Error(err, "listing pools for a node event")
		return
	}
	set := NewPoolSet(ptrs(pools.Items))
	for _, obj := range objs {
		node, ok := obj.(*corev1.Node)
		if !ok {
			continue
		}
		for _, p := range pools.Items {
			if set.Selects(p.Name, node) {
				q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Name: p.Name}})
			}
		}
	}
}

func (r *Reconciler) enqueueAllPools(ctx context.Context, q Queue) {
	for _, req := range r.allPools(ctx, nil) {
		q.Add(req)
	}
}

func (r *Reconciler) allPools(ctx context.Context, _ client.Object) []reconcile.Request {
	var pools mcfgv1.MachineConfigPoolList
	if err := r.Client.List(ctx, &pools); err != nil {
		log.FromContext(ctx).Error(err, "listing pools")
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(pools.Items))
	for _, p := range pools.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: p.Name}})
	}
	return reqs
}

func poolRequest(name string) []reconcile.Request {
	if name == "" || name == NotYetSet {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: name}}}
}

func (r *Reconciler) poolForMachineOSConfig(_ context.Context, obj client.Object) []reconcile.Request {
	mosc, ok := obj.(*mcfgv1.MachineOSConfig)
	if !ok {
		return nil
	}
	return poolRequest(mosc.Spec.MachineConfigPool.Name)
}

// poolForMachineOSBuild maps a build to its MachineOSConfig's pool.
func (r *Reconciler) poolForMachineOSBuild(ctx context.Context, obj client.Object) []reconcile.Request {
	mosb, ok := obj.(*mcfgv1.MachineOSBuild)
	if !ok {
		return nil
	}
	mosc := &mcfgv1.MachineOSConfig{}
	if err := r.Client.Get(ctx, types.NamespacedName{Name: mosb.Spec.MachineOSConfig.Name}, mosc); err != nil {
		return nil
	}
	return poolRequest(mosc.Spec.MachineConfigPool.Name)
}

func poolForMachineConfigNode(_ context.Context, obj client.Object) []reconcile.Request {
	mcn, ok := obj.(*mcfgv1.MachineConfigNode)
	if !ok {
		return nil
	}
	return poolRequest(mcn.Spec.Pool.Name)
}
