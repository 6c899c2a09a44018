package rollout

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"

	"github.com/imagemode/imagemode/internal/wellknown"
)

func TestNodePredicates(t *testing.T) {
	const a, b, img1, img2 = "rendered-worker-a", "rendered-worker-b", "quay.io/x/os@sha256:1", "quay.io/x/os@sha256:2"
	tests := []struct {
		name                                       string
		node                                       *corev1.Node
		ready, done, failing, unavailable, degrade bool
	}{
		{name: "done", node: testNode("n", on(a)), ready: true, done: true},
		{name: "no annotations: not started, unavailable", node: testNode("n"), ready: true, unavailable: true},
		{name: "targeted, not started", node: testNode("n", withConfigs(a, b, wellknown.NodeStateDone)), ready: true, unavailable: true},
		{name: "working", node: testNode("n", withConfigs(a, b, wellknown.NodeStateWorking)), ready: true, unavailable: true},
		{name: "degraded towards another config: failing, available", node: testNode("n", withConfigs(a, b, wellknown.NodeStateDegraded)), ready: true, failing: true, degrade: true},
		{name: "unreconcilable", node: testNode("n", withConfigs(a, b, wellknown.NodeStateUnreconcilable)), ready: true, failing: true, degrade: true},
		{name: "degraded at its config (drift): not failing, unavailable", node: testNode("n", withConfigs(a, a, wellknown.NodeStateDegraded)), ready: true, unavailable: true, degrade: true},
		{name: "not ready", node: testNode("n", on(a), notReady()), done: true, unavailable: true},
		{name: "cordoned", node: testNode("n", on(a), cordoned()), done: true, unavailable: true},
		{name: "disk pressure", node: testNode("n", on(a), withCondition(corev1.NodeDiskPressure, corev1.ConditionTrue)), done: true, unavailable: true},
		{name: "network unavailable unknown", node: testNode("n", on(a), withCondition(corev1.NodeNetworkUnavailable, corev1.ConditionUnknown)), done: true, unavailable: true},
		{name: "pressure conditions False are fine", node: testNode("n", on(a), withCondition(corev1.NodeDiskPressure, corev1.ConditionFalse)), ready: true, done: true},
		{
			name: "never reported Ready", ready: false, done: true, unavailable: true,
			node: func() *corev1.Node { n := testNode("n", on(a)); n.Status.Conditions = nil; return n }(),
		},
		{name: "image done", node: testNode("n", on(a), withImages(img1, img1)), ready: true, done: true},
		{name: "image pending", node: testNode("n", on(a), withImages(img1, img2)), ready: true, unavailable: true},
		{name: "first image", node: testNode("n", on(a), withImages("", img1)), ready: true, unavailable: true},
		{name: "leaving layering (desired image empty)", node: testNode("n", on(a), withImages(img1, ""), withAnnotation(wellknown.DesiredImageAnnotation, "")), ready: true, unavailable: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.ready, IsNodeReady(tc.node), "IsNodeReady")
			assert.Equal(t, tc.done, IsNodeDone(tc.node), "IsNodeDone")
			assert.Equal(t, tc.failing, IsNodeMCDFailing(tc.node), "IsNodeMCDFailing")
			assert.Equal(t, tc.unavailable, IsUnavailableForUpdate(tc.node), "IsUnavailableForUpdate")
			assert.Equal(t, tc.degrade, IsNodeDegraded(tc.node), "IsNodeDegraded")
		})
	}
}

func TestCandidacyAndDoneness(t *testing.T) {
	const a, b, img1, img2 = "rendered-worker-a", "rendered-worker-b", "quay.io/x/os@sha256:1", "quay.io/x/os@sha256:2"
	classic := Target{Config: b}
	layered := Target{Config: b, Layered: true, Image: img2}
	layeredNoImage := Target{Config: b, Layered: true}
	tests := []struct {
		name       string
		node       *corev1.Node
		target     Target
		candidate  bool
		doneAt     bool
		wantTaints bool
	}{
		{name: "classic: on old config", node: testNode("n", on(a)), target: classic, candidate: true},
		{name: "classic: targeted, working", node: testNode("n", withConfigs(a, b, wellknown.NodeStateWorking)), target: classic},
		{name: "classic: done", node: testNode("n", on(b)), target: classic, doneAt: true},
		{name: "classic: done but still carries desiredImage (opting out of layering)", node: testNode("n", on(b), withImages(img1, img1)), target: classic, candidate: true},
		{name: "layered: classic node", node: testNode("n", on(b)), target: layered, candidate: true},
		{name: "layered: old image", node: testNode("n", on(b), withImages(img1, img1)), target: layered, candidate: true},
		{name: "layered: image targeted", node: testNode("n", on(b), withImages(img1, img2)), target: layered},
		{name: "layered: done", node: testNode("n", on(b), withImages(img2, img2)), target: layered, doneAt: true},
		{name: "layered: right image, old config", node: testNode("n", on(a), withImages(img2, img2)), target: layered, candidate: true},
		{name: "layered without image: nothing is done", node: testNode("n", on(b), withImages(img2, img2)), target: layeredNoImage, candidate: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.candidate, NeedsTargeting(tc.node, tc.target), "NeedsTargeting")
			assert.Equal(t, tc.doneAt, IsDoneAt(tc.node, tc.target), "IsDoneAt")
		})
	}
}

func TestUpdateInProgressTaint(t *testing.T) {
	n := testNode("n")
	assert.False(t, HasUpdateInProgressTaint(n))
	setUpdateInProgressTaint(n, true)
	assert.True(t, HasUpdateInProgressTaint(n))
	assert.Equal(t, "UpdateInProgress", n.Spec.Taints[0].Key)
	assert.Equal(t, corev1.TaintEffectPreferNoSchedule, n.Spec.Taints[0].Effect)
	n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: "other", Effect: corev1.TaintEffectNoSchedule})
	setUpdateInProgressTaint(n, false)
	assert.False(t, HasUpdateInProgressTaint(n))
	assert.Equal(t, []corev1.Taint{{Key: "other", Effect: corev1.TaintEffectNoSchedule}}, n.Spec.Taints, "other taints are kept")
}
