package rollout

import (
	"context"
	"fmt"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rolloutsv1 "github.com/imagemode/imagemode/api/rollouts/v1alpha1"
	"github.com/imagemode/imagemode/internal/controlplane"
	"github.com/imagemode/imagemode/internal/wellknown"
)

// TestPolicyMaintenanceWindowOnAPIServer runs the rollout controller with a fake clock on a real API server,
// the test playing the daemon (node annotations and the MachineConfigNode's Updated condition): outside the
// window nothing starts; inside it the canary starts; when the window closes mid-rollout the canary finishes
// but the next wave waits for the next opening.
func TestPolicyMaintenanceWindowOnAPIServer(t *testing.T) {
	cp := controlplane.Start(t, controlplane.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := cp.Client
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)) // Friday 10:00 UTC
	StartManager(ctx, t, cp, func(mgr ctrl.Manager) error {
		return (&Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("rollout"), Clock: clk}).SetupWithManager(mgr)
	})
	const old, cur = "rendered-worker-0001", "rendered-worker-0002"
	pool := workerPool(old)
	pool.Generation = 0
	require.NoError(t, c.Create(ctx, pool))
	for i := 0; i < 3; i++ {
		CreateNode(ctx, t, c, fmt.Sprintf("w-%d", i), map[string]string{"node-role.kubernetes.io/worker": ""}, OnConfig(old))
	}
	policy := &rolloutsv1.RolloutPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "worker-rollout"},
		Spec: rolloutsv1.RolloutPolicySpec{
			MachineConfigPool:  rolloutsv1.PoolReference{Name: "worker"},
			Waves:              []rolloutsv1.Wave{{Name: "canary", Count: ptr.To(intstr.FromInt32(1))}, {Name: "rest", MaxUnavailable: ptr.To(intstr.FromString("100%"))}},
			MaintenanceWindows: []rolloutsv1.MaintenanceWindow{{Start: "02:00", Duration: metav1.Duration{Duration: time.Hour}}},
		},
	}
	require.NoError(t, c.Create(ctx, policy))
	setPoolConfig(ctx, t, c, "worker", cur, nil)
	getPolicy := func() *rolloutsv1.RolloutPolicy {
		p := &rolloutsv1.RolloutPolicy{}
		require.NoError(t, c.Get(ctx, types.NamespacedName{Name: policy.Name}, p))
		return p
	}
	// kick makes the controller look again after the fake clock moved (its timers run on the real clock).
	kick := func(at time.Time) {
		clk.SetTime(at)
		p := getPolicy()
		before := p.DeepCopy()
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations["test/now"] = at.Format(time.RFC3339)
		require.NoError(t, c.Patch(ctx, p, client.MergeFrom(before)))
	}
	desired := func() map[string]string {
		out := map[string]string{}
		for i := 0; i < 3; i++ {
			n := &corev1.Node{}
			require.NoError(t, c.Get(ctx, types.NamespacedName{Name: fmt.Sprintf("w-%d", i)}, n))
			out[n.Name] = n.Annotations[wellknown.DesiredConfigAnnotation]
		}
		return out
	}

	WaitFor(ctx, t, "the policy waiting for its window", func(context.Context) (bool, error) {
		return getPolicy().Status.Phase == rolloutsv1.RolloutWaiting, nil
	})
	assert.Contains(t, getPolicy().Status.Message, "the next opens at 2026-12-05T02:00:00Z")
	assert.Equal(t, map[string]string{"w-0": old, "w-1": old, "w-2": old}, desired(), "nothing starts outside the window")

	kick(time.Date(2026, 12, 5, 2, 30, 0, 0, time.UTC))
	var canary string
	WaitFor(ctx, t, "the canary targeted", func(context.Context) (bool, error) {
		for name, d := range desired() {
			if d == cur {
				canary = name
			}
		}
		return canary != "", nil
	})

	// The window closes while the canary updates: it finishes, the rest waits.
	kick(time.Date(2026, 12, 5, 3, 30, 0, 0, time.UTC))
	PlayDaemon(ctx, t, c, canary)
	mcn := &mcfgv1.MachineConfigNode{}
	WaitFor(ctx, t, "the canary's MachineConfigNode", func(ctx context.Context) (bool, error) {
		return c.Get(ctx, types.NamespacedName{Name: canary}, mcn) == nil, nil
	})
	mcn.Status = mcfgv1.MachineConfigNodeStatus{
		ObservedGeneration: mcn.Generation,
		ConfigVersion:      &mcfgv1.MachineConfigNodeStatusMachineConfigVersion{Current: cur, Desired: cur},
		Conditions: []metav1.Condition{{Type: string(mcfgv1.MachineConfigNodeUpdated), Status: metav1.ConditionTrue,
			Reason: "Updated", Message: "Node " + canary + " Updated", LastTransitionTime: metav1.NewTime(clk.Now())}},
	}
	require.NoError(t, c.Status().Update(ctx, mcn))
	WaitFor(ctx, t, "the canary wave done, the rest waiting for the window", func(context.Context) (bool, error) {
		st := getPolicy().Status
		return st.CurrentWave == 1 && len(st.Waves) == 2 && st.Waves[0].Phase == rolloutsv1.WaveDone && st.Phase == rolloutsv1.RolloutWaiting, nil
	})
	time.Sleep(500 * time.Millisecond)
	for name, d := range desired() {
		if name != canary {
			assert.Equal(t, old, d, "%s must wait for the next window", name)
		}
	}

	kick(time.Date(2026, 12, 6, 2, 5, 0, 0, time.UTC))
	WaitFor(ctx, t, "the rest targeted in the next window", func(context.Context) (bool, error) {
		d := desired()
		return d["w-0"] == cur && d["w-1"] == cur && d["w-2"] == cur, nil
	})
	assert.Equal(t, rolloutsv1.RolloutProgressing, getPolicy().Status.Phase)
}
