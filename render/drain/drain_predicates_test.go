package drain

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/imagemode/imagemode/internal/wellknown"
)

func TestDrainRequestPredicate(t *testing.T) {
	base := nodeWith(map[string]string{wellknown.DesiredDrainAnnotation: "drain-a", wellknown.LastAppliedDrainAnnotation: "drain-a", "other": "x"})
	tests := []struct {
		name   string
		change func(n *corev1.Node)
		want   bool
	}{
		{name: "unrelated annotation", change: func(n *corev1.Node) { n.Annotations["other"] = "y" }},
		{name: "status heartbeat", change: func(n *corev1.Node) { n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady}} }},
		{name: "new request", change: func(n *corev1.Node) { n.Annotations[wellknown.DesiredDrainAnnotation] = "uncordon-a" }, want: true},
		{name: "lastApplied written", change: func(n *corev1.Node) { n.Annotations[wellknown.LastAppliedDrainAnnotation] = "drain-b" }, want: true},
		{name: "uncordoned by someone", change: func(n *corev1.Node) { n.Spec.Unschedulable = true }, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := base.DeepCopy()
			tc.change(n)
			assert.Equal(t, tc.want, DrainRequestPredicate{}.Update(event.UpdateEvent{ObjectOld: base, ObjectNew: n}))
		})
	}
	assert.False(t, DrainRequestPredicate{}.Create(event.CreateEvent{Object: base}), "a node whose request is done")
	assert.True(t, DrainRequestPredicate{}.Create(event.CreateEvent{Object: nodeWith(map[string]string{wellknown.DesiredDrainAnnotation: "drain-a"})}))
	assert.True(t, DrainRequestPredicate{}.Delete(event.DeleteEvent{Object: base}))
}
