package rollout

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/imagemode/imagemode/internal/wellknown"
)

func TestNodePatch(t *testing.T) {
	const old, cur, img = "rendered-worker-old", "rendered-worker-new", "quay.io/x/os@sha256:1"
	change := func(before *corev1.Node, edit func(*corev1.Node), taints bool) NodeChange {
		after := before.DeepCopy()
		edit(after)
		return NodeChange{Node: before, Updated: after, TaintsChanged: taints}
	}
	withRV := func(n *corev1.Node) *corev1.Node { n.ResourceVersion = "42"; return n }
	tests := []struct {
		name   string
		change NodeChange
		want   string
	}{
		{
			name:   "target a config",
			change: change(testNode("n", on(old)), func(n *corev1.Node) { setDesired(n, Target{Config: cur}) }, false),
			want:   `{"metadata":{"annotations":{"machineconfiguration.openshift.io/desiredConfig":"rendered-worker-new"}}}`,
		},
		{
			name:   "target a config and an image",
			change: change(testNode("n", on(cur)), func(n *corev1.Node) { setDesired(n, Target{Config: cur, Layered: true, Image: img}) }, false),
			want:   `{"metadata":{"annotations":{"machineconfiguration.openshift.io/desiredImage":"quay.io/x/os@sha256:1"}}}`,
		},
		{
			name:   "leave layering: desiredImage deleted",
			change: change(testNode("n", on(cur), withImages(img, img)), func(n *corev1.Node) { setDesired(n, Target{Config: cur}) }, false),
			want:   `{"metadata":{"annotations":{"machineconfiguration.openshift.io/desiredImage":null}}}`,
		},
		{
			name:   "taint added: the whole list, guarded by the resourceVersion",
			change: change(withRV(testNode("n", on(old))), func(n *corev1.Node) { setUpdateInProgressTaint(n, true) }, true),
			want:   `{"metadata":{"resourceVersion":"42"},"spec":{"taints":[{"key":"UpdateInProgress","effect":"PreferNoSchedule"}]}}`,
		},
		{
			name: "targeted and untainted at once",
			change: change(withRV(testNode("n", on(old), tainted())), func(n *corev1.Node) {
				setDesired(n, Target{Config: cur})
				setUpdateInProgressTaint(n, false)
			}, true),
			want: `{"metadata":{"annotations":{"machineconfiguration.openshift.io/desiredConfig":"rendered-worker-new"},"resourceVersion":"42"},"spec":{"taints":[]}}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NodePatch(tc.change)
			require.NoError(t, err)
			assert.JSONEq(t, tc.want, string(got))
			assert.NotContains(t, string(got), wellknown.CurrentConfigAnnotation, "the daemon's annotations are never written")
		})
	}
}
