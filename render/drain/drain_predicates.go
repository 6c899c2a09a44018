package drain

import (
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/imagemode/imagemode/internal/wellknown"
)

// DrainRequestPredicate passes node events that can start or change a drain: a node added with a pending
// request, a change of desiredDrain or lastAppliedDrain, and a change of schedulability (a node uncordoned
// during its drain is cordoned again). Deletes pass, to forget the node.
type DrainRequestPredicate struct {
	predicate.Funcs
}

// Create implements predicate.Predicate.
func (DrainRequestPredicate) Create(e event.CreateEvent) bool {
	n, ok := e.Object.(*corev1.Node)
	if !ok {
		return false
	}
	action, _, err := NextAction(n)
	return action != ActionNone || err != nil
}

// Update implements predicate.Predicate.
func (DrainRequestPredicate) Update(e event.UpdateEvent) bool {
	a, ok1 := e.ObjectOld.(*corev1.Node)
	b, ok2 := e.ObjectNew.(*corev1.Node)
	if !ok1 || !ok2 {
		return false
	}
	return a.Annotations[wellknown.DesiredDrainAnnotation] != b.Annotations[wellknown.DesiredDrainAnnotation] ||
		a.Annotations[wellknown.LastAppliedDrainAnnotation] != b.Annotations[wellknown.LastAppliedDrainAnnotation] ||
		a.Spec.Unschedulable != b.Spec.Unschedulable
}
