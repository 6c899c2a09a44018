package v1alpha1_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	. "github.com/imagemode/imagemode/api/rollouts/v1alpha1"
	"github.com/imagemode/imagemode/internal/controlplane"
)

// TestRolloutPolicySchemaMatchesTypes creates a policy with every field set on a real API server with the
// embedded CRD, writes its status, and reads both back unchanged: a field the CRD's schema lacks would be
// pruned. An invalid onFailure is refused naming the field.
func TestRolloutPolicySchemaMatchesTypes(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test (skipped with -short)")
	}
	cp := controlplane.Start(t, controlplane.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := cp.Client
	now := metav1.NewTime(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC))
	p := &RolloutPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "worker"},
		Spec: RolloutPolicySpec{
			MachineConfigPool: PoolReference{Name: "worker"},
			Waves: []Wave{
				{Name: "canary", Nodes: []string{"worker-0", "worker-1"}, SoakTime: &metav1.Duration{Duration: time.Minute}},
				{NodeSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"zone": "a"},
					MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: metav1.LabelSelectorOpIn, Values: []string{"v"}}}}},
				{Count: ptr.To(intstr.FromString("50%")), MaxUnavailable: ptr.To(intstr.FromInt32(2))},
			},
			HealthChecks: HealthChecks{Commands: []HealthCommand{{Name: "app", Command: "test -e /etc/app"}},
				Units: []string{"crio.service"}, Timeout: &metav1.Duration{Duration: 5 * time.Minute}},
			OnFailure: FailureRollback,
			MaintenanceWindows: []MaintenanceWindow{{Days: []string{"Saturday", "Sunday"}, Start: "02:00",
				Duration: metav1.Duration{Duration: 4 * time.Hour}, TimeZone: "Europe/Paris"}},
			PreStage:    &PreStage{MaxConcurrentPulls: 3},
			Paused:      true,
			PromoteWave: ptr.To[int32](1),
			Abort:       true,
		},
	}
	require.NoError(t, c.Create(ctx, p))
	p.Status = RolloutPolicyStatus{
		ObservedGeneration: 1, Phase: RolloutFailed, Target: RolloutTarget{Config: "rendered-worker-b", Image: "r/i@sha256:b"},
		CurrentWave: 1,
		Waves:       []WaveStatus{{Name: "canary", Phase: WaveFailed, Size: 2, StartedAt: &now, HealthyAt: &now, CompletedAt: &now}},
		Nodes: []NodeStatus{{Name: "worker-0", Wave: 0, Phase: NodeFailed,
			From: RolloutTarget{Config: "rendered-worker-a", Image: "r/i@sha256:a"}, Since: &now, Message: "check app failed"}},
		FailedGate: &GateFailure{Node: "worker-0", Gate: GateHealthCheck, Check: "app", Output: "exit 1", Time: now},
		Message:    "paused",
		Conditions: []metav1.Condition{{Type: "Degraded", Status: metav1.ConditionTrue, ObservedGeneration: 1,
			LastTransitionTime: now, Reason: "GateFailed", Message: "m"}},
	}
	require.NoError(t, c.Status().Update(ctx, p))
	got := &RolloutPolicy{}
	require.NoError(t, c.Get(ctx, types.NamespacedName{Name: p.Name}, got))
	if !equality.Semantic.DeepEqual(p.Spec, got.Spec) {
		t.Errorf("spec changed on the way through the API server:\nsent %#v\ngot  %#v", p.Spec, got.Spec)
	}
	if !equality.Semantic.DeepEqual(p.Status, got.Status) {
		t.Errorf("status changed on the way through the API server:\nsent %#v\ngot  %#v", p.Status, got.Status)
	}

	bad := &RolloutPolicy{ObjectMeta: metav1.ObjectMeta{Name: "bad"}, Spec: RolloutPolicySpec{
		MachineConfigPool: PoolReference{Name: "worker"}, Waves: []Wave{{}}, OnFailure: "Explode"}}
	err := c.Create(ctx, bad)
	require.Error(t, err)
	require.Contains(t, err.Error(), "spec.onFailure")
}
