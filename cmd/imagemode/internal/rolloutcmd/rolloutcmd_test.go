package rolloutcmd

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rolloutsv1 "github.com/imagemode/imagemode/api/rollouts/v1alpha1"
	"github.com/imagemode/imagemode/internal/controlplane"
)

// TestRolloutCommands runs status, pause, resume, promote and abort against a real API server with the CRD.
func TestRolloutCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test (skipped with -short)")
	}
	cp := controlplane.Start(t, controlplane.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := cp.Client
	var out bytes.Buffer
	err := Status(ctx, c, &out, "worker")
	require.EqualError(t, err, "no RolloutPolicy names pool worker (its changes roll out by spec.maxUnavailable alone)")

	at := metav1.NewTime(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC))
	p := &rolloutsv1.RolloutPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "worker-rollout"},
		Spec: rolloutsv1.RolloutPolicySpec{MachineConfigPool: rolloutsv1.PoolReference{Name: "worker"},
			Waves: []rolloutsv1.Wave{{Name: "canary", Nodes: []string{"w-1"}}, {Count: ptr.To(intstr.FromString("50%"))}}},
	}
	require.NoError(t, c.Create(ctx, p))
	p.Status = rolloutsv1.RolloutPolicyStatus{Phase: rolloutsv1.RolloutFailed, Target: rolloutsv1.RolloutTarget{Config: "rendered-worker-b"},
		Message:    "gate HealthCheck (check app) failed on node w-1: boom; paused",
		Waves:      []rolloutsv1.WaveStatus{{Name: "canary", Phase: rolloutsv1.WaveFailed, Size: 1, StartedAt: &at}, {Name: "wave-1", Phase: rolloutsv1.WavePending, Size: 2}},
		Nodes:      []rolloutsv1.NodeStatus{{Name: "w-1", Phase: rolloutsv1.NodeFailed, Since: &at, Message: "gate HealthCheck failed"}},
		FailedGate: &rolloutsv1.GateFailure{Node: "w-1", Gate: rolloutsv1.GateHealthCheck, Check: "app", Output: "boom\nexit status 1", Time: at}}
	require.NoError(t, c.Status().Update(ctx, p))

	out.Reset()
	require.NoError(t, Status(ctx, c, &out, "worker"))
	s := out.String()
	for _, want := range []string{
		"rolloutpolicy/worker-rollout  pool worker  phase Failed\n",
		"target: rendered-worker-b\n",
		"failed gate: HealthCheck on node w-1 (check app) at 2026-12-04T10:00:00Z\n  | boom\n  | exit status 1\n",
		"*0    canary  Failed   1      2026-12-04T10:00:00Z",
		"w-1   0     Failed  2026-12-04T10:00:00Z  gate HealthCheck failed",
	} {
		assert.Contains(t, s, want)
	}

	get := func() *rolloutsv1.RolloutPolicy {
		got := &rolloutsv1.RolloutPolicy{}
		require.NoError(t, c.Get(ctx, client.ObjectKey{Name: p.Name}, got))
		return got
	}
	out.Reset()
	require.NoError(t, Steer(ctx, c, &out, "worker", ActionPause))
	assert.True(t, get().Spec.Paused)
	assert.Equal(t, "rolloutpolicy/worker-rollout (pool worker) paused: no further node starts\n", out.String())
	require.NoError(t, Steer(ctx, c, &out, "worker", ActionResume))
	assert.False(t, get().Spec.Paused)
	require.NoError(t, Steer(ctx, c, &out, "worker", ActionPromote))
	assert.Equal(t, ptr.To[int32](1), get().Spec.PromoteWave)
	require.NoError(t, Steer(ctx, c, &out, "worker", ActionAbort))
	assert.True(t, get().Spec.Abort)
	assert.Equal(t, "rendered-worker-b", get().Status.Target.Config, "the commands change the spec only")

	second := &rolloutsv1.RolloutPolicy{ObjectMeta: metav1.ObjectMeta{Name: "another"}, Spec: p.Spec}
	require.NoError(t, c.Create(ctx, second))
	err = Steer(ctx, c, &out, "worker", ActionPause)
	require.EqualError(t, err, "pool worker is named by several RolloutPolicies (another, worker-rollout); none applies until one is left")
}
