package rollout

import (
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/imagemode/imagemode/internal/wellknown"
)

func TestNodeRolloutPredicate(t *testing.T) {
	base := testNode("n", workerRole(), on("rendered-worker-a"))
	tests := []struct {
		name   string
		change func(n *corev1.Node)
		want   bool
	}{
		{name: "heartbeat only", change: func(n *corev1.Node) {
			n.Status.Conditions[0].LastHeartbeatTime = metav1.NewTime(time.Now())
			n.ResourceVersion = "2"
		}},
		{name: "unrelated annotation", change: func(n *corev1.Node) { n.Annotations["volumes.kubernetes.io/controller-managed-attach-detach"] = "true" }},
		{name: "unrelated taint", change: func(n *corev1.Node) {
			n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: "x", Effect: corev1.TaintEffectNoSchedule})
		}},
		{name: "label (membership, zone)", change: func(n *corev1.Node) { n.Labels["canary-update-group"] = "true" }, want: true},
		{name: "currentConfig", change: func(n *corev1.Node) { n.Annotations[wellknown.CurrentConfigAnnotation] = "rendered-worker-b" }, want: true},
		{name: "state", change: func(n *corev1.Node) { n.Annotations[wellknown.StateAnnotation] = wellknown.NodeStateWorking }, want: true},
		{name: "desiredImage removed", change: func(n *corev1.Node) {
			n.Annotations[wellknown.DesiredImageAnnotation] = ""
		}, want: true},
		{name: "cordoned", change: func(n *corev1.Node) { n.Spec.Unschedulable = true }, want: true},
		{name: "not ready", change: func(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionFalse }, want: true},
		{name: "UpdateInProgress taint", change: func(n *corev1.Node) { n.Spec.Taints = []corev1.Taint{UpdateInProgressTaint()} }, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			changed := base.DeepCopy()
			tc.change(changed)
			assert.Equal(t, tc.want, NodeRolloutPredicate{}.Update(event.UpdateEvent{ObjectOld: base, ObjectNew: changed}))
		})
	}
	assert.True(t, NodeRolloutPredicate{}.Create(event.CreateEvent{Object: base}), "adds pass")
	assert.True(t, NodeRolloutPredicate{}.Delete(event.DeleteEvent{Object: base}), "deletes pass")
}

func TestNodeSelectorChanged(t *testing.T) {
	a := workerPool("rendered-worker-a")
	b := a.DeepCopy()
	b.Spec.Paused = true
	assert.False(t, nodeSelectorChanged(a, b))
	b.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"x": "y"}}
	assert.True(t, nodeSelectorChanged(a, b))
	assert.True(t, nodeSelectorChanged(a, &mcfgv1.MachineConfigPool{}))
}
