package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/imagemode/imagemode/examples"
	"github.com/imagemode/imagemode/internal/controlplane"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos/osbuild"
)

// Helpers for the tests on a real API server, exported for the external test package (canary_test.go).

// StartManager runs a controller manager on cp with the controllers setup registers, until the test ends.
func StartManager(ctx context.Context, t *testing.T, cp *controlplane.ControlPlane, setup func(ctrl.Manager) error) {
	t.Helper()
	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{
		Scheme: cp.Scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		// Several tests in this binary register the same controllers, each in its own manager.
		Controller: config.Controller{SkipNameValidation: new(true)},
	})
	require.NoError(t, err)
	require.NoError(t, setup(mgr))
	mgrCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	t.Cleanup(func() { stop(); <-done })
}

// CreateNode creates a Ready node with labels and annotations (the kubelet and the daemon would).
func CreateNode(ctx context.Context, t *testing.T, c client.Client, name string, labels, annotations map[string]string) *corev1.Node {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: annotations}}
	require.NoError(t, c.Create(ctx, n))
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	require.NoError(t, c.Status().Update(ctx, n))
	return n
}

// OnConfig is the annotations of a node the daemon left done at config.
func OnConfig(config string) map[string]string {
	return map[string]string{
		wellknown.CurrentConfigAnnotation: config, wellknown.DesiredConfigAnnotation: config, wellknown.StateAnnotation: wellknown.NodeStateDone,
	}
}

// PlayDaemon does what the daemon does when it has applied a node's target: currentConfig (and currentImage)
// become the desired ones, state Done.
func PlayDaemon(ctx context.Context, t *testing.T, c client.Client, nodes ...string) {
	t.Helper()
	for _, name := range nodes {
		n := &corev1.Node{}
		require.NoError(t, c.Get(ctx, types.NamespacedName{Name: name}, n))
		require.NoError(t, c.Patch(ctx, n, client.RawPatch(types.MergePatchType, daemonDonePatch(n))))
	}
}

func daemonDonePatch(n *corev1.Node) []byte {
	ann := map[string]any{
		wellknown.CurrentConfigAnnotation: n.Annotations[wellknown.DesiredConfigAnnotation],
		wellknown.StateAnnotation:         wellknown.NodeStateDone,
		wellknown.ReasonAnnotation:        nil,
	}
	if img, ok := n.Annotations[wellknown.DesiredImageAnnotation]; ok && img != "" {
		ann[wellknown.CurrentImageAnnotation] = img
	} else {
		ann[wellknown.CurrentImageAnnotation] = nil
	}
	raw, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": ann}})
	return raw
}

// NeedsDaemon reports whether a node has a target the daemon has not applied.
func NeedsDaemon(n *corev1.Node) bool {
	a := n.Annotations
	return a[wellknown.DesiredConfigAnnotation] != a[wellknown.CurrentConfigAnnotation] ||
		a[wellknown.DesiredImageAnnotation] != a[wellknown.CurrentImageAnnotation] || a[wellknown.StateAnnotation] != wellknown.NodeStateDone
}

// RunDaemon plays the daemon of every node in the background until the test ends: each node targeted to
// something it does not run gets it applied. It counts the nodes it moved.
func RunDaemon(ctx context.Context, t *testing.T, c client.Client) *atomic.Int32 {
	t.Helper()
	moved := &atomic.Int32{}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			var nodes corev1.NodeList
			if err := c.List(ctx, &nodes); err != nil {
				return false, nil
			}
			for i := range nodes.Items {
				n := &nodes.Items[i]
				if n.Annotations[wellknown.DesiredConfigAnnotation] == "" || !NeedsDaemon(n) {
					continue
				}
				if err := c.Patch(ctx, n, client.RawPatch(types.MergePatchType, daemonDonePatch(n))); err == nil {
					moved.Add(1)
				}
			}
			return false, nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return moved
}

// WaitFor polls cond until it holds (30 s at most).
func WaitFor(ctx context.Context, t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, cond), "waiting for %s", what)
}

// GetMCP runs `kubectl get mcp <pool>` and returns its columns by header (NAME, CONFIG, UPDATED, UPDATING,
// DEGRADED, MACHINECOUNT, READYMACHINECOUNT, UPDATEDMACHINECOUNT, DEGRADEDMACHINECOUNT, AGE).
func GetMCP(ctx context.Context, cp *controlplane.ControlPlane, pool string) (map[string]string, error) {
	out, err := cp.Kubectl(ctx, nil, "get", "mcp", pool)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, out)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 2 {
		return nil, fmt.Errorf("unexpected output: %q", out)
	}
	header, row := lines[0], lines[1]
	cols := map[string]string{}
	fields := strings.Fields(header)
	for i, f := range fields {
		start := strings.Index(header, f)
		end := len(row)
		if i+1 < len(fields) {
			end = strings.Index(header, fields[i+1])
		}
		if start > len(row) {
			start = len(row)
		}
		if end > len(row) {
			end = len(row)
		}
		cols[f] = strings.TrimSpace(row[start:end])
	}
	return cols, nil
}

// MCPColumns is `UPDATED UPDATING DEGRADED MACHINECOUNT READYMACHINECOUNT UPDATEDMACHINECOUNT
// DEGRADEDMACHINECOUNT` of `kubectl get mcp <pool>`.
func MCPColumns(ctx context.Context, cp *controlplane.ControlPlane, pool string) string {
	cols, err := GetMCP(ctx, cp, pool)
	if err != nil {
		return err.Error()
	}
	return strings.Join([]string{cols["UPDATED"], cols["UPDATING"], cols["DEGRADED"], cols["MACHINECOUNT"],
		cols["READYMACHINECOUNT"], cols["UPDATEDMACHINECOUNT"], cols["DEGRADEDMACHINECOUNT"]}, " ")
}

// WaitMCP waits until `kubectl get mcp <pool>` shows the columns want (see MCPColumns).
func WaitMCP(ctx context.Context, t *testing.T, cp *controlplane.ControlPlane, pool, want string) {
	t.Helper()
	last := ""
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		last = MCPColumns(ctx, cp, pool)
		return last == want, nil
	})
	if err != nil {
		out, _ := cp.Kubectl(ctx, nil, "get", "mcp", pool)
		t.Fatalf("oc get mcp %s: want %q, last %q:\n%s", pool, want, last, out)
	}
}

// WritesOfOnePass runs one pass of a fresh reconciler (reading straight from the API server) over pool and
// returns how many writes it made.
func WritesOfOnePass(ctx context.Context, t *testing.T, cp *controlplane.ControlPlane, pool string) int32 {
	t.Helper()
	counting, writes, err := cp.CountingClient()
	require.NoError(t, err)
	fresh := &Reconciler{Client: counting, Recorder: events.NewFakeRecorder(100), Clock: clock.RealClock{}}
	_, err = fresh.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Name: pool}})
	require.NoError(t, err)
	return writes.Load()
}

// EventReasons returns the reasons of the events.k8s.io events about an object (by name).
func EventReasons(ctx context.Context, t *testing.T, cp *controlplane.ControlPlane, name string) []string {
	t.Helper()
	list, err := cp.Kube.EventsV1().Events(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Name == name {
			out = append(out, e.Reason+": "+e.Note)
		}
	}
	return out
}

// PoolStatus reads a pool.
func PoolStatus(ctx context.Context, t *testing.T, c client.Client, name string) *mcfgv1.MachineConfigPool {
	t.Helper()
	p := &mcfgv1.MachineConfigPool{}
	require.NoError(t, c.Get(ctx, types.NamespacedName{Name: name}, p))
	return p
}

func docMachineOSConfig() ([]byte, error) { return examples.Doc(examples.MachineOSConfigLayeredImage) }

// setBuildState plays the build service: the build's five conditions for state, and its digested image.
func setBuildState(ctx context.Context, t *testing.T, c client.Client, name string, state osbuild.State, digest string) {
	t.Helper()
	b := &mcfgv1.MachineOSBuild{}
	require.NoError(t, c.Get(ctx, types.NamespacedName{Name: name}, b))
	b.Status.Conditions = osbuild.Conditions(state, b.Status.Conditions, metav1.Now())
	b.Status.DigestedImagePushSpec = mcfgv1.ImageDigestFormat(digest)
	require.NoError(t, c.Status().Update(ctx, b))
}
