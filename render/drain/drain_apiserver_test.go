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
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/imagemode/imagemode/internal/controlplane"
	"github.com/imagemode/imagemode/internal/wellknown"
)

// TestDrainOnAPIServer drains a node on a real API server with a real kube-controller-manager (whose
// disruption controller keeps the PodDisruptionBudget's status). There is no kubelet: the test creates pods
// bound to nodes and marks them Running and Ready itself; an eviction deletes a pod at once (grace 0).
// The budget (minAvailable 1) blocks the drain until a second pod is ready; DaemonSet pods stay; another
// node's drain is not held up meanwhile; then the node is uncordoned on request.
func TestDrainOnAPIServer(t *testing.T) {
	cp := controlplane.Start(t, controlplane.Options{ControllerManager: true})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	kube := cp.Kube

	metrics, err := NewMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{Scheme: cp.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	require.NoError(t, err)
	r := &Reconciler{Kube: kube, Recorder: mgr.GetEventRecorder("machineconfigcontroller-draincontroller"), Metrics: metrics,
		Options: Options{AttemptTimeout: 2 * time.Second, EvictRetryDelay: 200 * time.Millisecond, RetryInterval: 500 * time.Millisecond, StuckAfter: 3 * time.Second}}
	require.NoError(t, r.SetupWithManager(mgr))
	mgrCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	t.Cleanup(func() { stop(); <-done })

	for _, n := range []string{"node-a", "node-b", "node-c"} {
		createReadyNode(ctx, t, kube, n)
	}
	ns := metav1.NamespaceDefault
	sts, err := kube.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.StatefulSetSpec{
			Replicas: new(int32(0)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "busybox"}}}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	ds, err := kube.AppsV1().DaemonSets(ns).Create(ctx, &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: "busybox"}}}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	owner := func(kind, name string, uid types.UID) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, UID: uid, Controller: new(true)}}
	}
	runPod(ctx, t, kube, "web-0", "node-a", "web", owner("StatefulSet", "web", sts.UID), true)
	runPod(ctx, t, kube, "web-1", "node-b", "web", owner("StatefulSet", "web", sts.UID), false)
	runPod(ctx, t, kube, "agent-a", "node-a", "agent", owner("DaemonSet", "agent", ds.UID), true)

	_, err = kube.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: new(intstr.FromInt32(1)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	pdbStatus := func(want func(policyv1.PodDisruptionBudgetStatus) bool) {
		t.Helper()
		require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			pdb, err := kube.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, "web", metav1.GetOptions{})
			return err == nil && want(pdb.Status), nil
		}))
	}
	pdbStatus(func(s policyv1.PodDisruptionBudgetStatus) bool {
		return s.CurrentHealthy == 1 && s.DisruptionsAllowed == 0
	})

	// The daemon of node-a asks for a drain: cordoned, but web-0 may not be evicted.
	requestDrain(ctx, t, kube, "node-a", "drain-rendered-worker-1")
	waitNode(ctx, t, kube, "node-a", "cordoned", func(n *corev1.Node) bool { return n.Spec.Unschedulable })
	waitEvent(ctx, t, kube, "node-a", ReasonDrainFailed)
	assert.Equal(t, float64(1), gaugeValue(t, metrics, "node-a"))
	_, err = kube.CoreV1().Pods(ns).Get(ctx, "web-0", metav1.GetOptions{})
	require.NoError(t, err, "the budget protects web-0")
	assert.Empty(t, annotation(ctx, t, kube, "node-a", wellknown.LastAppliedDrainAnnotation))

	// Meanwhile node-c drains at once: one stuck node holds no other up.
	requestDrain(ctx, t, kube, "node-c", "drain-rendered-worker-1")
	waitNode(ctx, t, kube, "node-c", "drained", func(n *corev1.Node) bool {
		return n.Annotations[wellknown.LastAppliedDrainAnnotation] == "drain-rendered-worker-1" && n.Spec.Unschedulable
	})

	// web-1 becomes ready: the budget allows one disruption, web-0 is evicted, the drain completes.
	setPodReady(ctx, t, kube, "web-1", true)
	waitNode(ctx, t, kube, "node-a", "drained", func(n *corev1.Node) bool {
		return n.Annotations[wellknown.LastAppliedDrainAnnotation] == "drain-rendered-worker-1"
	})
	_, err = kube.CoreV1().Pods(ns).Get(ctx, "web-0", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "web-0 was evicted: %v", err)
	_, err = kube.CoreV1().Pods(ns).Get(ctx, "agent-a", metav1.GetOptions{})
	assert.NoError(t, err, "DaemonSet pods stay")
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return gaugeValue(t, metrics, "node-a") == 0, nil
	}), "the gauge clears once the drain is done")

	// After the update the daemon asks for an uncordon.
	requestDrain(ctx, t, kube, "node-a", "uncordon-rendered-worker-1")
	waitNode(ctx, t, kube, "node-a", "uncordoned", func(n *corev1.Node) bool {
		return !n.Spec.Unschedulable && n.Annotations[wellknown.LastAppliedDrainAnnotation] == "uncordon-rendered-worker-1"
	})
}

func createReadyNode(ctx context.Context, t *testing.T, kube kubernetes.Interface, name string) {
	t.Helper()
	n, err := kube.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	require.NoError(t, err)
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	_, err = kube.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
	require.NoError(t, err)
}

// runPod creates a pod bound to node and plays its kubelet: Running, Ready as asked. Its grace period is 0,
// so an eviction deletes it at once (no kubelet would finish a graceful deletion).
func runPod(ctx context.Context, t *testing.T, kube kubernetes.Interface, name, node, app string, owners []metav1.OwnerReference, ready bool) {
	t.Helper()
	p, err := kube.CoreV1().Pods(metav1.NamespaceDefault).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": app}, OwnerReferences: owners},
		Spec: corev1.PodSpec{
			NodeName: node, TerminationGracePeriodSeconds: new(int64(0)),
			Containers: []corev1.Container{{Name: app, Image: "busybox"}},
			Volumes:    []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: readiness(ready), LastTransitionTime: metav1.Now()}}
	_, err = kube.CoreV1().Pods(metav1.NamespaceDefault).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	require.NoError(t, err)
}

func readiness(ready bool) corev1.ConditionStatus {
	if ready {
		return corev1.ConditionTrue
	}
	return corev1.ConditionFalse
}

func setPodReady(ctx context.Context, t *testing.T, kube kubernetes.Interface, name string, ready bool) {
	t.Helper()
	p, err := kube.CoreV1().Pods(metav1.NamespaceDefault).Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: readiness(ready), LastTransitionTime: metav1.Now()}}
	_, err = kube.CoreV1().Pods(metav1.NamespaceDefault).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	require.NoError(t, err)
}

func requestDrain(ctx context.Context, t *testing.T, kube kubernetes.Interface, node, request string) {
	t.Helper()
	patch := `{"metadata":{"annotations":{"` + wellknown.DesiredDrainAnnotation + `":"` + request + `"}}}`
	_, err := kube.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	require.NoError(t, err)
}

func waitNode(ctx context.Context, t *testing.T, kube kubernetes.Interface, name, what string, cond func(*corev1.Node) bool) {
	t.Helper()
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		n, err := kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		return err == nil && cond(n), nil
	}), "waiting for node %s %s", name, what)
}

func waitEvent(ctx context.Context, t *testing.T, kube kubernetes.Interface, regarding, reason string) {
	t.Helper()
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := kube.EventsV1().Events(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		for _, e := range list.Items {
			if e.Regarding.Name == regarding && e.Reason == reason && e.Type == corev1.EventTypeWarning && strings.Contains(e.Note, "has been failing") {
				return true, nil
			}
		}
		return false, nil
	}), "waiting for event %s about %s", reason, regarding)
}

func annotation(ctx context.Context, t *testing.T, kube kubernetes.Interface, node, key string) string {
	t.Helper()
	n, err := kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	require.NoError(t, err)
	return n.Annotations[key]
}

func gaugeValue(t *testing.T, m *Metrics, node string) float64 {
	t.Helper()
	var out dto.Metric
	require.NoError(t, m.DrainErr.WithLabelValues(node).Write(&out))
	return out.GetGauge().GetValue()
}
