package progressive

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	rolloutsv1 "github.com/imagemode/imagemode/api/rollouts/v1alpha1"
)

var (
	t0   = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	oldT = Target{Config: "rendered-worker-a"}
	newT = Target{Config: "rendered-worker-b"}
)

// canaryPolicy is the docs' canary story: 2 named canary nodes (soak 10m), then 50 %, then the rest.
func canaryPolicy(onFailure rolloutsv1.FailureAction) *rolloutsv1.RolloutPolicy {
	return &rolloutsv1.RolloutPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "worker", Generation: 1},
		Spec: rolloutsv1.RolloutPolicySpec{
			MachineConfigPool: rolloutsv1.PoolReference{Name: "worker"},
			Waves: []rolloutsv1.Wave{
				{Name: "canary", Nodes: []string{"w-4", "w-5"}, MaxUnavailable: ptr.To(intstr.FromInt32(2)),
					SoakTime: &metav1.Duration{Duration: 10 * time.Minute}},
				{Name: "half", Count: ptr.To(intstr.FromString("50%")), MaxUnavailable: ptr.To(intstr.FromString("100%"))},
				{Name: "rest"},
			},
			HealthChecks: rolloutsv1.HealthChecks{Commands: []rolloutsv1.HealthCommand{{Name: "app", Command: "test -e /etc/app"}}},
			OnFailure:    onFailure,
		},
	}
}

// nodes returns n nodes w-0 … w-(n-1), all done on t.
func nodes(n int, t Target) []Node {
	out := make([]Node, n)
	for i := range out {
		out[i] = Node{Name: fmt.Sprintf("w-%d", i), Current: t, Desired: t, Done: true, Ready: true, MCNUpdated: true}
	}
	return out
}

// updated marks the named nodes done on t with a health report.
func updated(ns []Node, t Target, passed bool, names ...string) []Node {
	for i := range ns {
		if contains(names, ns[i].Name) {
			ns[i].Current, ns[i].Desired, ns[i].Done = t, t, true
			ns[i].Health = &rolloutsv1.HealthReport{Config: t.Config, Image: t.Image, Passed: passed}
			if !passed {
				ns[i].Health.Check, ns[i].Health.Output = "app", "test: /etc/app: missing"
			}
		}
	}
	return ns
}

func targeted(ns []Node, t Target, names ...string) []Node {
	for i := range ns {
		if contains(names, ns[i].Name) {
			ns[i].Desired, ns[i].Done = t, false
		}
	}
	return ns
}

// step runs Decide and feeds the status back into the policy, as the controller does.
func step(t *testing.T, p *rolloutsv1.RolloutPolicy, ns []Node, now time.Time) Decision {
	t.Helper()
	d := Decide(Inputs{Policy: p, Target: newT, Nodes: ns, Now: now})
	require.NoError(t, d.Err)
	p.Status = d.Status
	return d
}

func phases(st rolloutsv1.RolloutPolicyStatus) map[string]rolloutsv1.NodePhase {
	out := map[string]rolloutsv1.NodePhase{}
	for _, n := range st.Nodes {
		out[n.Name] = n.Phase
	}
	return out
}

// TestCanaryStory walks the docs' canary story through Decide: canary (2 named nodes) → 50 % → the rest,
// with the health gate and the soak time.
func TestCanaryStory(t *testing.T) {
	p := canaryPolicy(rolloutsv1.FailurePause)
	ns := nodes(6, oldT)

	d := step(t, p, ns, t0)
	assert.Equal(t, []string{"w-4", "w-5"}, d.Allowed, "the canary wave starts")
	assert.Equal(t, 2, d.MaxUnavailable)
	assert.Equal(t, int32(0), d.Status.CurrentWave)
	assert.Equal(t, rolloutsv1.RolloutProgressing, d.Status.Phase)
	assert.Equal(t, []int32{2, 3, 1}, sizes(d.Status), "canary 2, half 3 (50 % of 6), rest 1")
	require.NotNil(t, d.HealthChecks)
	assert.Equal(t, newT.Config, d.HealthChecks.Config)
	assert.Equal(t, oldT, d.Status.Nodes[0].From)

	ns = targeted(ns, newT, "w-4", "w-5")
	ns[4].Draining = true
	d = step(t, p, ns, t0.Add(time.Minute))
	assert.Empty(t, d.Allowed, "no other node may start while the canary updates")
	assert.Equal(t, map[string]rolloutsv1.NodePhase{"w-4": rolloutsv1.NodeDraining, "w-5": rolloutsv1.NodeUpdating}, phases(d.Status))

	// Done on the new config but the health checks have not reported yet: Checking.
	ns[4].Draining = false
	ns[4].Done, ns[5].Done = true, true
	d = step(t, p, ns, t0.Add(2*time.Minute))
	assert.Equal(t, rolloutsv1.NodeChecking, phases(d.Status)["w-4"])
	assert.Contains(t, d.Status.Nodes[0].Message, "health checks")
	assert.Empty(t, d.Allowed)

	// Both pass: the wave soaks 10 minutes.
	ns = updated(ns, newT, true, "w-4", "w-5")
	d = step(t, p, ns, t0.Add(3*time.Minute))
	assert.Equal(t, rolloutsv1.WaveSoaking, d.Status.Waves[0].Phase)
	assert.Equal(t, 10*time.Minute, d.RequeueAfter)
	assert.Empty(t, d.Allowed)
	d = step(t, p, ns, t0.Add(12*time.Minute))
	assert.Empty(t, d.Allowed, "soak not over")
	assert.Equal(t, time.Minute, d.RequeueAfter)

	// Soak over: the half wave (3 nodes in update order, all at once).
	d = step(t, p, ns, t0.Add(13*time.Minute))
	assert.Equal(t, rolloutsv1.WaveDone, d.Status.Waves[0].Phase)
	assert.Equal(t, int32(1), d.Status.CurrentWave)
	assert.Equal(t, []string{"w-0", "w-1", "w-2"}, d.Allowed)
	assert.Equal(t, 3, d.MaxUnavailable)

	// Half done and healthy (no soak): the rest starts.
	ns = updated(ns, newT, true, "w-0", "w-1", "w-2")
	d = step(t, p, ns, t0.Add(14*time.Minute))
	assert.Equal(t, []string{"w-3"}, d.Allowed)
	ns = updated(ns, newT, true, "w-3")
	d = step(t, p, ns, t0.Add(15*time.Minute))
	assert.Equal(t, rolloutsv1.RolloutCompleted, d.Status.Phase)
	assert.Equal(t, int32(3), d.Status.CurrentWave)
	assert.Empty(t, d.Allowed)
}

func sizes(st rolloutsv1.RolloutPolicyStatus) []int32 {
	var out []int32
	for _, w := range st.Waves {
		out = append(out, w.Size)
	}
	return out
}

// TestFailedGate: a health check failing on a canary node pauses the rollout (nothing else is allowed,
// the gate and its output are in status); with Rollback the failed node goes back first, within the wave's
// maxUnavailable, to what it ran before.
func TestFailedGate(t *testing.T) {
	for _, tc := range []struct {
		name      string
		onFailure rolloutsv1.FailureAction
		wantPhase rolloutsv1.RolloutPhase
		wantBack  map[string]Target
	}{
		{name: "pause", onFailure: rolloutsv1.FailurePause, wantPhase: rolloutsv1.RolloutFailed},
		{name: "rollback", onFailure: rolloutsv1.FailureRollback, wantPhase: rolloutsv1.RolloutRolledBack,
			wantBack: map[string]Target{"w-4": oldT, "w-5": oldT}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := canaryPolicy(tc.onFailure)
			ns := nodes(6, oldT)
			step(t, p, ns, t0)
			ns = targeted(ns, newT, "w-4", "w-5")
			ns = updated(ns, newT, true, "w-5")
			ns = updated(ns, newT, false, "w-4")
			d := step(t, p, ns, t0.Add(time.Minute))
			assert.Empty(t, d.Allowed)
			assert.Equal(t, tc.wantPhase, d.Status.Phase)
			require.NotNil(t, d.Status.FailedGate)
			assert.Equal(t, rolloutsv1.GateFailure{Node: "w-4", Gate: rolloutsv1.GateHealthCheck, Check: "app",
				Output: "test: /etc/app: missing", Time: metav1.NewTime(t0.Add(time.Minute))}, *d.Status.FailedGate)
			assert.Equal(t, rolloutsv1.WaveFailed, d.Status.Waves[0].Phase)
			assert.Equal(t, tc.wantBack, nilIfEmpty(d.Rollback))
			assert.Contains(t, d.Status.Message, "gate HealthCheck (check app) failed on node w-4: test: /etc/app: missing")

			// Later passes keep the failure, even once the failed node reports healthy or is back.
			ns = updated(ns, newT, true, "w-4")
			if tc.onFailure == rolloutsv1.FailureRollback {
				for i := 4; i < 6; i++ {
					ns[i].Desired, ns[i].Current, ns[i].Done = oldT, oldT, true
				}
			}
			d = step(t, p, ns, t0.Add(20*time.Minute))
			assert.Empty(t, d.Allowed)
			assert.Equal(t, tc.wantPhase, d.Status.Phase)
			if tc.onFailure == rolloutsv1.FailureRollback {
				assert.Equal(t, rolloutsv1.NodeRolledBack, phases(d.Status)["w-4"])
				assert.Contains(t, d.Status.Message, "rolled back")
			}
		})
	}
}

func nilIfEmpty(m map[string]Target) map[string]Target {
	if len(m) == 0 {
		return nil
	}
	return m
}

// TestRollbackBudget: a rollback moves at most the wave's maxUnavailable nodes at once, the failed one first.
func TestRollbackBudget(t *testing.T) {
	p := canaryPolicy(rolloutsv1.FailureRollback)
	p.Spec.Waves[0].MaxUnavailable = nil // 1
	ns := nodes(6, oldT)
	step(t, p, ns, t0)
	ns = targeted(ns, newT, "w-4", "w-5")
	ns = updated(ns, newT, true, "w-4")
	ns = updated(ns, newT, false, "w-5")
	d := step(t, p, ns, t0.Add(time.Minute))
	assert.Equal(t, map[string]Target{"w-5": oldT}, d.Rollback, "the failed node first, one at a time")
	ns[5].Desired, ns[5].Done = oldT, false
	d = step(t, p, ns, t0.Add(2*time.Minute))
	assert.Equal(t, map[string]Target{"w-5": oldT}, d.Rollback, "w-5 still going back uses the budget")
	ns[5].Current, ns[5].Done = oldT, true
	d = step(t, p, ns, t0.Add(3*time.Minute))
	assert.Equal(t, map[string]Target{"w-5": oldT, "w-4": oldT}, d.Rollback)
}

// TestHolds: what stops new nodes from starting while the rest of the decision goes on.
func TestHolds(t *testing.T) {
	for _, tc := range []struct {
		name        string
		edit        func(*rolloutsv1.RolloutPolicy)
		now         time.Time
		wantPhase   rolloutsv1.RolloutPhase
		wantRequeue time.Duration
	}{
		{name: "paused", edit: func(p *rolloutsv1.RolloutPolicy) { p.Spec.Paused = true }, now: t0,
			wantPhase: rolloutsv1.RolloutPaused},
		{name: "outside the window", now: t0, // Friday 10:00 UTC; the window opens at 22:00 Paris (21:00 UTC)
			edit: func(p *rolloutsv1.RolloutPolicy) {
				p.Spec.MaintenanceWindows = []rolloutsv1.MaintenanceWindow{{Days: []string{"Friday"}, Start: "22:00",
					Duration: metav1.Duration{Duration: 2 * time.Hour}, TimeZone: "Europe/Paris"}}
			},
			wantPhase: rolloutsv1.RolloutWaiting, wantRequeue: 11 * time.Hour},
		{name: "aborted", edit: func(p *rolloutsv1.RolloutPolicy) { p.Spec.Abort = true }, now: t0,
			wantPhase: rolloutsv1.RolloutAborted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := canaryPolicy(rolloutsv1.FailurePause)
			tc.edit(p)
			d := step(t, p, nodes(6, oldT), tc.now)
			assert.Empty(t, d.Allowed)
			assert.Equal(t, tc.wantPhase, d.Status.Phase)
			assert.Equal(t, tc.wantRequeue, d.RequeueAfter)
			assert.Nil(t, d.Status.Waves[0].StartedAt, "no wave starts")
		})
	}
}

// TestWindowClosesMidWave: work in flight goes on, nothing new starts; the next wave waits for the window.
func TestWindowClosesMidWave(t *testing.T) {
	p := canaryPolicy(rolloutsv1.FailurePause)
	p.Spec.Waves[0].MaxUnavailable = nil
	p.Spec.Waves[0].SoakTime = nil
	p.Spec.MaintenanceWindows = []rolloutsv1.MaintenanceWindow{{Start: "09:00", Duration: metav1.Duration{Duration: time.Hour}}}
	ns := nodes(6, oldT)
	d := step(t, p, ns, t0.Add(-30*time.Minute))
	assert.Equal(t, []string{"w-4", "w-5"}, d.Allowed)
	ns = targeted(ns, newT, "w-4")
	d = step(t, p, ns, t0.Add(10*time.Minute)) // 10:10, closed
	assert.Empty(t, d.Allowed)
	assert.Equal(t, rolloutsv1.RolloutWaiting, d.Status.Phase)
	assert.Equal(t, rolloutsv1.NodeUpdating, phases(d.Status)["w-4"], "the node in flight goes on")
	ns = updated(ns, newT, true, "w-4", "w-5")
	d = step(t, p, ns, t0.Add(20*time.Minute))
	assert.Equal(t, int32(1), d.Status.CurrentWave)
	assert.Nil(t, d.Status.Waves[1].StartedAt, "the next wave waits for the window")
	assert.Equal(t, 22*time.Hour+40*time.Minute, d.RequeueAfter)
	d = step(t, p, ns, t0.Add(23*time.Hour+5*time.Minute))
	assert.Equal(t, []string{"w-0", "w-1", "w-2"}, d.Allowed)
}

func TestPromoteSkipsSoak(t *testing.T) {
	p := canaryPolicy(rolloutsv1.FailurePause)
	ns := nodes(6, oldT)
	step(t, p, ns, t0)
	ns = updated(ns, newT, true, "w-4", "w-5")
	d := step(t, p, ns, t0.Add(time.Minute))
	assert.Equal(t, rolloutsv1.WaveSoaking, d.Status.Waves[0].Phase)
	p.Spec.PromoteWave = ptr.To[int32](1)
	d = step(t, p, ns, t0.Add(2*time.Minute))
	assert.Equal(t, []string{"w-0", "w-1", "w-2"}, d.Allowed)
}

func TestGates(t *testing.T) {
	for _, tc := range []struct {
		name      string
		edit      func(*Node)
		after     time.Duration
		wantPhase rolloutsv1.NodePhase
		wantGate  string
	}{
		{name: "not ready yet", edit: func(n *Node) { n.Ready = false }, wantPhase: rolloutsv1.NodeChecking},
		{name: "MachineConfigNode not updated", edit: func(n *Node) { n.MCNUpdated = false }, wantPhase: rolloutsv1.NodeChecking},
		{name: "report for another config", edit: func(n *Node) { n.Health.Config = "rendered-worker-x" }, wantPhase: rolloutsv1.NodeChecking},
		{name: "degraded update", edit: func(n *Node) { n.Done, n.Degraded, n.Reason = false, true, "disk full" },
			wantPhase: rolloutsv1.NodeFailed, wantGate: rolloutsv1.GateUpdate},
		{name: "MachineConfigNode degraded", edit: func(n *Node) { n.MCNDegraded = "boom" },
			wantPhase: rolloutsv1.NodeFailed, wantGate: rolloutsv1.GateMachineConfigNode},
		{name: "timeout", edit: func(n *Node) { n.Health = nil }, after: 31 * time.Minute,
			wantPhase: rolloutsv1.NodeFailed, wantGate: rolloutsv1.GateTimeout},
		{name: "all pass", edit: func(*Node) {}, wantPhase: rolloutsv1.NodeDone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := canaryPolicy(rolloutsv1.FailurePause)
			ns := nodes(6, oldT)
			step(t, p, ns, t0)
			ns = updated(ns, newT, true, "w-4", "w-5")
			tc.edit(&ns[4])
			d := step(t, p, ns, t0.Add(time.Minute))
			if tc.after > 0 {
				d = step(t, p, ns, t0.Add(time.Minute+tc.after))
			}
			assert.Equal(t, tc.wantPhase, phases(d.Status)["w-4"])
			if tc.wantGate == "" {
				assert.Nil(t, d.Status.FailedGate)
				return
			}
			require.NotNil(t, d.Status.FailedGate)
			assert.Equal(t, tc.wantGate, d.Status.FailedGate.Gate)
			assert.Equal(t, "w-4", d.Status.FailedGate.Node)
		})
	}
}

// TestNodeReadyDuringSoak: a canary node that stops being Ready while its wave soaks fails the gate.
func TestNodeReadyDuringSoak(t *testing.T) {
	p := canaryPolicy(rolloutsv1.FailurePause)
	ns := nodes(6, oldT)
	step(t, p, ns, t0)
	ns = updated(ns, newT, true, "w-4", "w-5")
	step(t, p, ns, t0.Add(time.Minute))
	ns[5].Ready = false
	d := step(t, p, ns, t0.Add(2*time.Minute))
	require.NotNil(t, d.Status.FailedGate)
	assert.Equal(t, rolloutsv1.GateNodeReady, d.Status.FailedGate.Gate)
	assert.Equal(t, rolloutsv1.RolloutFailed, d.Status.Phase)
}

// TestNewTargetRestarts: a change arriving mid-rollout starts over from the canary; the failure is cleared.
func TestNewTargetRestarts(t *testing.T) {
	p := canaryPolicy(rolloutsv1.FailurePause)
	ns := nodes(6, oldT)
	step(t, p, ns, t0)
	ns = updated(ns, newT, false, "w-4")
	d := step(t, p, ns, t0.Add(time.Minute))
	require.NotNil(t, d.Status.FailedGate)
	third := Target{Config: "rendered-worker-c"}
	d = Decide(Inputs{Policy: p, Target: third, Nodes: ns, Now: t0.Add(2 * time.Minute)})
	assert.Nil(t, d.Status.FailedGate)
	assert.Equal(t, third, d.Status.Target)
	assert.Equal(t, []string{"w-4", "w-5"}, d.Allowed)
	assert.Equal(t, newT, d.Status.Nodes[0].From, "w-4 goes back to what it ran when the new rollout started")
}

// TestAlreadyAtTarget: a policy created on a pool whose nodes already run the target completes at once
// (no gates, no soak).
func TestAlreadyAtTarget(t *testing.T) {
	p := canaryPolicy(rolloutsv1.FailurePause)
	d := step(t, p, nodes(6, newT), t0)
	assert.Equal(t, rolloutsv1.RolloutCompleted, d.Status.Phase)
	assert.Empty(t, d.Allowed)
}

// TestNodeJoinsMidRollout: a node that joins the pool after the waves were planned goes to the last wave.
func TestNodeJoinsMidRollout(t *testing.T) {
	p := canaryPolicy(rolloutsv1.FailurePause)
	p.Spec.Waves = p.Spec.Waves[:2]
	ns := nodes(4, oldT)
	d := step(t, p, ns, t0)
	assert.Equal(t, []int32{0, 2, 2}, sizes(d.Status), "the canary names nodes not in the pool: it is empty and done")
	assert.Equal(t, []string{"w-0", "w-1"}, d.Allowed)
	ns = append(ns, Node{Name: "w-9", Current: oldT, Desired: oldT, Done: true, Ready: true, MCNUpdated: true})
	d = step(t, p, ns, t0.Add(time.Minute))
	assert.Equal(t, []int32{0, 2, 3}, sizes(d.Status), "the started wave keeps its members; the last wave takes the new node")
}

func TestInvalidSpec(t *testing.T) {
	p := canaryPolicy(rolloutsv1.FailurePause)
	p.Spec.Waves[1].Nodes = []string{"w-0"}
	d := Decide(Inputs{Policy: p, Target: newT, Nodes: nodes(6, oldT), Now: t0})
	require.Error(t, d.Err)
	assert.Equal(t, "RolloutPolicy worker: spec.waves[1]: set at most one of nodes, nodeSelector and count", d.Err.Error())
	assert.Empty(t, d.Allowed)
	assert.Equal(t, d.Err.Error(), d.Status.Message)
}

func TestEvents(t *testing.T) {
	p := canaryPolicy(rolloutsv1.FailureRollback)
	ns := nodes(6, oldT)
	reasons := func(old rolloutsv1.RolloutPolicyStatus, d Decision) []string {
		var out []string
		for _, e := range Events(old, d.Status) {
			out = append(out, e.Reason)
		}
		return out
	}
	old := p.Status
	d := step(t, p, ns, t0)
	assert.Equal(t, []string{ReasonWaveStarted}, reasons(old, d))
	old = p.Status
	d = step(t, p, ns, t0.Add(time.Second))
	assert.Empty(t, reasons(old, d), "nothing new, no event")
	ns = targeted(ns, newT, "w-4", "w-5")
	ns = updated(ns, newT, false, "w-4")
	old = p.Status
	d = step(t, p, ns, t0.Add(time.Minute))
	assert.Equal(t, []string{ReasonGateFailedEvent, ReasonRollingBack}, reasons(old, d))
	for i := 4; i < 6; i++ {
		ns[i].Desired, ns[i].Current, ns[i].Done = oldT, oldT, true
	}
	old = p.Status
	d = step(t, p, ns, t0.Add(2*time.Minute))
	assert.Equal(t, []string{ReasonRolledBack}, reasons(old, d))
}
