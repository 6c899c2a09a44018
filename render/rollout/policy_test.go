package rollout

import (
	"encoding/json"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	rolloutsv1 "github.com/imagemode/imagemode/api/rollouts/v1alpha1"
	"github.com/imagemode/imagemode/internal/wellknown"
)

func canaryPolicy() *rolloutsv1.RolloutPolicy {
	return &rolloutsv1.RolloutPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "worker-rollout", Generation: 1},
		Spec: rolloutsv1.RolloutPolicySpec{
			MachineConfigPool: rolloutsv1.PoolReference{Name: "worker"},
			Waves: []rolloutsv1.Wave{
				{Name: "canary", Nodes: []string{"n3", "n4"}, MaxUnavailable: ptr.To(intstr.FromInt32(2))},
				{Count: ptr.To(intstr.FromString("50%")), MaxUnavailable: ptr.To(intstr.FromInt32(1))},
			},
			HealthChecks: rolloutsv1.HealthChecks{Commands: []rolloutsv1.HealthCommand{{Name: "ok", Command: "true"}}},
			OnFailure:    rolloutsv1.FailureRollback,
		},
	}
}

// TestDecideWithPolicy: under a RolloutPolicy only the current wave's nodes are targeted (the pool's
// maxUnavailable of 10 does not apply; the wave's does), they get the health checks with their target, the
// others get the UpdateInProgress taint; a failed health check on the canary rolls it back to its config.
func TestDecideWithPolicy(t *testing.T) {
	const old, cur = "rendered-worker-old", "rendered-worker-new"
	pool := withMaxUnavailable(workerPool(cur), intstr.FromInt32(10))
	nodes := poolNodes(6, on(old))
	policy := canaryPolicy()
	now := metav1.NewTime(t0)
	d := Decide(Inputs{Pool: pool, Nodes: nodes, Policy: policy, Now: now})
	require.Equal(t, HoldNone, d.Hold, d.Err)
	assert.Equal(t, []string{"n3", "n4"}, names(d.Targeted()))
	require.NotNil(t, d.Policy)
	assert.Equal(t, rolloutsv1.RolloutProgressing, d.Policy.Status.Phase)
	var checks rolloutsv1.NodeHealthChecks
	require.NoError(t, json.Unmarshal([]byte(d.Targeted()[0].Annotations[rolloutsv1.HealthChecksAnnotation]), &checks))
	assert.Equal(t, rolloutsv1.NodeHealthChecks{Config: cur, Commands: policy.Spec.HealthChecks.Commands}, checks)
	patch, err := NodePatch(d.NodeChanges[0])
	require.NoError(t, err)
	assert.Contains(t, string(patch), rolloutsv1.HealthChecksAnnotation, "the checks go with the target, in one patch")
	for _, c := range d.NodeChanges[2:] {
		assert.True(t, HasUpdateInProgressTaint(c.Updated), "%s waits with the taint", c.Node.Name)
	}

	// The canary nodes updated; n3's health check failed: n3 and n4 go back to the old config, no other
	// node is targeted.
	policy.Status = d.Policy.Status
	nodes, _ = applyDecision(nodes, nil, d)
	for _, i := range []int{3, 4} {
		u := nodes[i].DeepCopy()
		u.Annotations[wellknown.CurrentConfigAnnotation] = cur
		report := rolloutsv1.HealthReport{Config: cur, Passed: i == 4}
		if i == 3 {
			report.Check, report.Output = "ok", "exit status 1"
		}
		raw, _ := json.Marshal(report)
		u.Annotations[rolloutsv1.HealthReportAnnotation] = string(raw)
		nodes[i] = u
	}
	d = Decide(Inputs{Pool: pool, Nodes: nodes, Policy: policy, Now: metav1.NewTime(t0.Add(time.Minute))})
	assert.Equal(t, rolloutsv1.RolloutRolledBack, d.Policy.Status.Phase)
	require.NotNil(t, d.Policy.Status.FailedGate)
	assert.Equal(t, "exit status 1", d.Policy.Status.FailedGate.Output)
	after, _ := applyDecision(nodes, nil, d)
	want := map[string]string{"n0": old, "n1": old, "n2": old, "n3": old, "n4": old, "n5": old}
	assert.Equal(t, want, desiredOf(after))
	for _, n := range after[3:5] {
		assert.False(t, HasUpdateInProgressTaint(n), "%s: going back, not waiting", n.Name)
	}
}

func TestDecideWithoutPolicyIgnoresChecks(t *testing.T) {
	const old, cur = "rendered-worker-old", "rendered-worker-new"
	d := Decide(Inputs{Pool: withMaxUnavailable(workerPool(cur), intstr.FromInt32(2)), Nodes: poolNodes(3, on(old)), Now: metav1.NewTime(t0)})
	assert.Nil(t, d.Policy)
	for _, n := range d.Targeted() {
		assert.NotContains(t, n.Annotations, rolloutsv1.HealthChecksAnnotation)
	}
	assert.Len(t, d.Targeted(), 2)
}

func TestPolicyFor(t *testing.T) {
	a, b := canaryPolicy(), canaryPolicy()
	b.Name = "another"
	other := canaryPolicy()
	other.Name, other.Spec.MachineConfigPool.Name = "infra-rollout", "infra"
	p, err := PolicyFor("worker", []*rolloutsv1.RolloutPolicy{other, a})
	require.NoError(t, err)
	assert.Equal(t, a, p)
	p, err = PolicyFor("master", []*rolloutsv1.RolloutPolicy{other, a})
	require.NoError(t, err)
	assert.Nil(t, p)
	_, err = PolicyFor("worker", []*rolloutsv1.RolloutPolicy{a, b})
	require.EqualError(t, err, "pool worker is named by several RolloutPolicies (another, worker-rollout); none applies until one is left")
	d := Decide(Inputs{Pool: workerPool("rendered-worker-new"), Nodes: poolNodes(2, on("rendered-worker-old")), PolicyErr: err})
	assert.Equal(t, HoldInvalidPolicy, d.Hold)
	assert.Empty(t, d.NodeChanges)
}

func TestProgressiveNodes(t *testing.T) {
	n := testNode("n0", withConfigs("a", "b", wellknown.NodeStateWorking),
		withAnnotation(wellknown.DesiredDrainAnnotation, "drain-b"), withAnnotation(rolloutsv1.HealthReportAnnotation, `{"config":"b","passed":true}`))
	got := ProgressiveNodes([]*corev1.Node{n}, nil)
	require.Len(t, got, 1)
	assert.True(t, got[0].Draining)
	assert.False(t, got[0].Done)
	assert.True(t, got[0].Ready)
	assert.Equal(t, &rolloutsv1.HealthReport{Config: "b", Passed: true}, got[0].Health)
	assert.False(t, got[0].MCNUpdated, "no MachineConfigNode")
}

// BenchmarkDecidePolicy5000 is BenchmarkDecide5000 with a RolloutPolicy naming the pool (a 2-node canary,
// then 10 % waves, 10 % maxUnavailable each), and reports the cost against the same pass without a policy,
// measured in the same run.
func BenchmarkDecidePolicy5000(b *testing.B) {
	objs := benchCluster(0, 0)
	in := Inputs{Pool: objs[0].(*mcfgv1.MachineConfigPool), MachineConfigNodes: map[string]*mcfgv1.MachineConfigNode{}, Now: metav1.Now()}
	for _, o := range objs[1:] {
		switch v := o.(type) {
		case *corev1.Node:
			in.Nodes = append(in.Nodes, v)
		case *mcfgv1.MachineConfigNode:
			in.MachineConfigNodes[v.Name] = v
		}
	}
	policy := &rolloutsv1.RolloutPolicy{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: rolloutsv1.RolloutPolicySpec{
		MachineConfigPool: rolloutsv1.PoolReference{Name: in.Pool.Name},
		Waves:             []rolloutsv1.Wave{{Count: ptr.To(intstr.FromInt32(2)), MaxUnavailable: ptr.To(intstr.FromInt32(2))}},
	}}
	for i := 0; i < 10; i++ {
		policy.Spec.Waves = append(policy.Spec.Waves, rolloutsv1.Wave{Count: ptr.To(intstr.FromString("10%")), MaxUnavailable: ptr.To(intstr.FromString("10%"))})
	}
	withPolicy := in
	withPolicy.Policy = policy
	var plain, progressive time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		Decide(in)
		t1 := time.Now()
		d := Decide(withPolicy)
		progressive += time.Since(t1)
		plain += t1.Sub(t0)
		if len(d.Targeted()) != 2 || d.Policy == nil {
			b.Fatalf("targeted %d", len(d.Targeted()))
		}
	}
	b.ReportMetric(float64(progressive)/float64(plain), "x-without-policy")
	b.ReportMetric(float64(progressive.Milliseconds())/float64(b.N), "ms/pass")
}
