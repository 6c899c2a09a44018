package renderer

import (
	"context"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/imagemode/imagemode/internal/controlplane"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/render/poolstatus"
)

// TestRenderControllerOnAPIServer runs the render controller in a manager against a real API server.
func TestRenderControllerOnAPIServer(t *testing.T) {
	cp := controlplane.Start(t, controlplane.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := cp.Client

	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{Scheme: cp.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	require.NoError(t, err)
	rec := &Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("render"), Version: "test-v1"}
	require.NoError(t, rec.SetupWithManager(mgr))
	mgrCtx, stopMgr := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	t.Cleanup(func() { stopMgr(); <-done })

	require.NoError(t, c.Create(ctx, NewControllerConfig("quay.io/openshift/rhcos@sha256:base", "quay.io/openshift/ext@sha256:base", "4.19.0")))
	require.NoError(t, c.Create(ctx, fileConfig("00-worker", "worker", "/etc/a", "one")))
	require.NoError(t, c.Create(ctx, fileConfig("01-worker", "worker", "/etc/b", "one")))
	require.NoError(t, c.Create(ctx, pool("worker", roleSelector("worker")))) // last: the first render sees both configs

	first := waitRendered(ctx, t, c, "worker", "")
	rendered := &mcfgv1.MachineConfig{}
	require.NoError(t, c.Get(ctx, types.NamespacedName{Name: first}, rendered))
	owner := metav1.GetControllerOf(rendered)
	require.NotNil(t, owner, "rendered config must be owned by the pool")
	assert.Equal(t, "worker", owner.Name)
	assert.Equal(t, "test-v1", rendered.Annotations[wellknown.GeneratedByControllerVersionAnnotation])
	assert.Equal(t, "4.19.0", rendered.Annotations[wellknown.ReleaseImageVersionAnnotation])
	p := &mcfgv1.MachineConfigPool{}
	require.NoError(t, c.Get(ctx, types.NamespacedName{Name: "worker"}, p))
	require.Len(t, p.Spec.Configuration.Source, 2)
	assert.Equal(t, "00-worker", p.Spec.Configuration.Source[0].Name)

	// Change one config: a new rendered name. Revert: the old name again.
	patchFile := func(data string) {
		mc := &mcfgv1.MachineConfig{}
		require.NoError(t, c.Get(ctx, types.NamespacedName{Name: "01-worker"}, mc))
		mc.Spec.Config = fileConfig("01-worker", "worker", "/etc/b", data).Spec.Config
		require.NoError(t, c.Update(ctx, mc))
	}
	patchFile("two")
	second := waitRendered(ctx, t, c, "worker", first)
	assert.NotEqual(t, first, second)
	patchFile("one")
	assert.Equal(t, first, waitRendered(ctx, t, c, "worker", second), "reverting must give the old rendered name back")

	// An invalid config: RenderDegraded names it; the pool keeps its rendered config.
	require.NoError(t, c.Create(ctx, config("50-setuid", "worker", `{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/usr/local/bin/s","mode":2541}]}}`)))
	cond := waitCondition(ctx, t, c, "worker", corev1.ConditionTrue)
	assert.Equal(t, ReasonInvalidMachineConfig, cond.Reason)
	assert.Contains(t, cond.Message, `machineconfig "50-setuid": spec.config.storage.files[0].mode`)
	assert.Contains(t, cond.Message, `invalid mode 04755 for /usr/local/bin/s, cannot exceed 0777`, "the message names the file, as the reference's does")
	require.NoError(t, c.Get(ctx, types.NamespacedName{Name: "worker"}, p))
	assert.Equal(t, first, p.Spec.Configuration.Name)
	require.NoError(t, c.Delete(ctx, &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: "50-setuid"}}))
	assert.Equal(t, ReasonRendered, waitCondition(ctx, t, c, "worker", corev1.ConditionFalse).Reason)

	// An empty or unknown Ignition version (issue 14's bad input): RenderDegraded names the config and the
	// version; the pool keeps its rendered config.
	for _, bad := range []struct{ name, ign, want string }{
		{"50-no-version", `{"ignition":{"version":""}}`, `unsupported Ignition version ""`},
		{"50-unknown-version", `{"ignition":{"version":"9.9.0"}}`, "unsupported Ignition version 9.9.0 (want 2.x or 3.0–3.5)"},
	} {
		require.NoError(t, c.Create(ctx, config(bad.name, "worker", bad.ign)))
		cond := waitCondition(ctx, t, c, "worker", corev1.ConditionTrue)
		assert.Equal(t, ReasonInvalidMachineConfig, cond.Reason, bad.name)
		assert.Contains(t, cond.Message, `machineconfig "`+bad.name+`"`)
		assert.Contains(t, cond.Message, bad.want)
		require.NoError(t, c.Get(ctx, types.NamespacedName{Name: "worker"}, p))
		assert.Equal(t, first, p.Spec.Configuration.Name)
		require.NoError(t, c.Delete(ctx, &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: bad.name}}))
		waitCondition(ctx, t, c, "worker", corev1.ConditionFalse)
	}

	// An unreconcilable config: refused naming it.
	require.NoError(t, c.Create(ctx, config("60-users", "worker", `{"ignition":{"version":"3.2.0"},"passwd":{"users":[{"name":"alice","sshAuthorizedKeys":["k"]}]}}`)))
	cond = waitCondition(ctx, t, c, "worker", corev1.ConditionTrue)
	assert.Equal(t, ReasonUnreconcilable, cond.Reason)
	assert.Contains(t, cond.Message, "and config 60-users")
	require.NoError(t, c.Delete(ctx, &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: "60-users"}}))
	waitCondition(ctx, t, c, "worker", corev1.ConditionFalse)

	// A pass over unchanged state writes nothing (a restarted controller creates nothing new).
	counting, writes, err := cp.CountingClient()
	require.NoError(t, err)
	fresh := &Reconciler{Client: counting, Recorder: events.NewFakeRecorder(10), Clock: clock.RealClock{}, Version: "test-v1"}
	_, err = fresh.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Name: "worker"}})
	require.NoError(t, err)
	assert.Zero(t, writes.Load(), "a pass over unchanged state must not write")
	var all mcfgv1.MachineConfigList
	require.NoError(t, c.List(ctx, &all))
	renderedCount := 0
	for _, m := range all.Items {
		if metav1.GetControllerOf(&m) != nil {
			renderedCount++
		}
	}
	assert.Equal(t, 2, renderedCount, "exactly the two distinct rendered configs exist")
}

func waitRendered(ctx context.Context, t *testing.T, c client.Client, poolName, notName string) string {
	t.Helper()
	var name string
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p := &mcfgv1.MachineConfigPool{}
		if err := c.Get(ctx, types.NamespacedName{Name: poolName}, p); err != nil {
			return false, err
		}
		name = p.Spec.Configuration.Name
		return name != "" && name != notName, nil
	})
	require.NoError(t, err, "pool %s never got a rendered config other than %q", poolName, notName)
	return name
}

func waitCondition(ctx context.Context, t *testing.T, c client.Client, poolName string, status corev1.ConditionStatus) mcfgv1.MachineConfigPoolCondition {
	t.Helper()
	var got mcfgv1.MachineConfigPoolCondition
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p := &mcfgv1.MachineConfigPool{}
		if err := c.Get(ctx, types.NamespacedName{Name: poolName}, p); err != nil {
			return false, err
		}
		cond := poolstatus.FindCondition(&p.Status, mcfgv1.MachineConfigPoolRenderDegraded)
		if cond == nil || cond.Status != status {
			return false, nil
		}
		got = *cond
		return true, nil
	})
	require.NoError(t, err, "RenderDegraded of %s never became %s", poolName, status)
	return got
}
