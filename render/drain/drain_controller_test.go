package drain

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/imagemode/imagemode/internal/wellknown"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func fakeReconciler(t *testing.T, objs ...runtime.Object) (*Reconciler, *fake.Clientset, *clocktesting.FakePassiveClock, *events.FakeRecorder) {
	t.Helper()
	kube := fake.NewClientset(objs...)
	m, err := NewMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	clk := clocktesting.NewFakePassiveClock(t0)
	rec := events.NewFakeRecorder(10)
	r := &Reconciler{Kube: kube, Recorder: rec, Metrics: m, Clock: clk,
		Options: Options{AttemptTimeout: time.Second, EvictRetryDelay: 10 * time.Millisecond}.withDefaults()}
	return r, kube, clk, rec
}

func drainNode(name, request string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{wellknown.DesiredDrainAnnotation: request}}}
}

func reconcileNode(t *testing.T, r *Reconciler, name string) reconcile.Result {
	t.Helper()
	res, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Name: name}})
	require.NoError(t, err)
	return res
}

func lastApplied(t *testing.T, kube *fake.Clientset, name string) string {
	t.Helper()
	n, err := kube.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return n.Annotations[wellknown.LastAppliedDrainAnnotation]
}

func TestDrainAndUncordon(t *testing.T) {
	r, kube, _, _ := fakeReconciler(t, drainNode("n", "drain-rendered-worker-a"))
	assert.Equal(t, reconcile.Result{}, reconcileNode(t, r, "n"))
	n, err := kube.CoreV1().Nodes().Get(context.Background(), "n", metav1.GetOptions{})
	require.NoError(t, err)
	assert.True(t, n.Spec.Unschedulable, "cordoned")
	assert.Equal(t, "drain-rendered-worker-a", n.Annotations[wellknown.LastAppliedDrainAnnotation])

	// Done already: a second pass writes nothing.
	kube.ClearActions()
	reconcileNode(t, r, "n")
	for _, a := range kube.Actions() {
		assert.Equal(t, "get", a.GetVerb(), "a pass over a performed request only reads")
	}

	n.Annotations[wellknown.DesiredDrainAnnotation] = "uncordon-rendered-worker-a"
	n.Annotations[wellknown.LastAppliedDrainAnnotation] = "drain-rendered-worker-a"
	_, err = kube.CoreV1().Nodes().Update(context.Background(), n, metav1.UpdateOptions{})
	require.NoError(t, err)
	reconcileNode(t, r, "n")
	n, err = kube.CoreV1().Nodes().Get(context.Background(), "n", metav1.GetOptions{})
	require.NoError(t, err)
	assert.False(t, n.Spec.Unschedulable, "uncordoned")
	assert.Equal(t, "uncordon-rendered-worker-a", n.Annotations[wellknown.LastAppliedDrainAnnotation])
}

func TestUncordonedDuringDrainIsNotAcknowledged(t *testing.T) {
	r, kube, _, _ := fakeReconciler(t, drainNode("n", "drain-rendered-worker-a"))
	gets := 0
	kube.PrependReactor("get", "nodes", func(action k8stesting.Action) (bool, runtime.Object, error) {
		gets++
		if gets < 2 {
			return false, nil, nil
		}
		// Someone uncordons the node while it is drained.
		n := drainNode("n", "drain-rendered-worker-a")
		return true, n, nil
	})
	res := reconcileNode(t, r, "n")
	assert.Equal(t, uncordonedRetry, res.RequeueAfter, "drained again soon")
	assert.Empty(t, lastApplied(t, kube, "n"), "lastAppliedDrain is not written")
}

func TestStuckDrainIsReportedAndRetried(t *testing.T) {
	bare := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "bare", Namespace: "default"},
		Spec:       corev1.PodSpec{NodeName: "n", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	r, kube, clk, rec := fakeReconciler(t, drainNode("n", "drain-rendered-worker-a"), bare)
	gauge := func() float64 {
		var m dto.Metric
		require.NoError(t, r.Metrics.DrainErr.WithLabelValues("n").Write(&m))
		return m.GetGauge().GetValue()
	}

	// A pod no controller manages is refused (it would be lost): the drain fails and is retried.
	assert.Equal(t, time.Minute, reconcileNode(t, r, "n").RequeueAfter)
	assert.Empty(t, lastApplied(t, kube, "n"))
	assert.Empty(t, rec.Events, "not reported yet")
	clk.SetTime(t0.Add(11 * time.Minute))
	assert.Equal(t, 5*time.Minute, reconcileNode(t, r, "n").RequeueAfter, "slower retries after 10 minutes")
	assert.Zero(t, gauge())

	clk.SetTime(t0.Add(61 * time.Minute))
	assert.Equal(t, 5*time.Minute, reconcileNode(t, r, "n").RequeueAfter, "still retried after an hour")
	require.Len(t, rec.Events, 1)
	ev := <-rec.Events
	assert.True(t, strings.HasPrefix(ev, "Warning DrainFailed "), ev)
	assert.Contains(t, ev, "drain-rendered-worker-a")
	assert.Equal(t, float64(1), gauge())
	reconcileNode(t, r, "n")
	assert.Empty(t, rec.Events, "reported once")

	// The pod goes: the drain completes, the gauge clears.
	require.NoError(t, kube.CoreV1().Pods("default").Delete(context.Background(), "bare", metav1.DeleteOptions{}))
	assert.Equal(t, reconcile.Result{}, reconcileNode(t, r, "n"))
	assert.Equal(t, "drain-rendered-worker-a", lastApplied(t, kube, "n"))
	assert.Zero(t, gauge())
}

func TestUnknownVerbIsTerminal(t *testing.T) {
	r, kube, _, _ := fakeReconciler(t, drainNode("n", "reboot-rendered-worker-a"))
	_, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Name: "n"}})
	require.Error(t, err)
	assert.ErrorIs(t, err, reconcile.TerminalError(nil))
	assert.Empty(t, lastApplied(t, kube, "n"))
}

func TestMetricsRegisterTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := NewMetrics(reg)
	require.NoError(t, err)
	b, err := NewMetrics(reg)
	require.NoError(t, err)
	assert.Same(t, a.DrainErr, b.DrainErr, "a second manager in one process shares the gauge")
}
