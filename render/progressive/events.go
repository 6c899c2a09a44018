package progressive

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	rolloutsv1 "github.com/imagemode/imagemode/api/rollouts/v1alpha1"
)

// Event reasons on a RolloutPolicy.
const (
	ReasonWaveStarted      = "WaveStarted"
	ReasonWaveHealthy      = "WaveHealthy"
	ReasonWaveCompleted    = "WaveCompleted"
	ReasonGateFailedEvent  = "GateFailed"
	ReasonRollingBack      = "RollingBack"
	ReasonRolledBack       = "RolledBack"
	ReasonRolloutCompleted = "RolloutCompleted"
	ReasonRolloutAborted   = "RolloutAborted"
)

// Event is one event to record on the policy.
type Event struct {
	Type, Reason, Message string
}

// Events are the events between two statuses of a policy (the one read and the one a pass writes): wave
// starts, healthy waves, completed waves, a failed gate, a rollback started and finished, the rollout done.
func Events(old, cur rolloutsv1.RolloutPolicyStatus) []Event {
	var out []Event
	normal := func(reason, format string, args ...any) {
		out = append(out, Event{Type: corev1.EventTypeNormal, Reason: reason, Message: fmt.Sprintf(format, args...)})
	}
	warn := func(reason, format string, args ...any) {
		out = append(out, Event{Type: corev1.EventTypeWarning, Reason: reason, Message: fmt.Sprintf(format, args...)})
	}
	sameRollout := old.Target == cur.Target
	for i, w := range cur.Waves {
		var was rolloutsv1.WaveStatus
		if sameRollout && i < len(old.Waves) {
			was = old.Waves[i]
		}
		if w.StartedAt != nil && was.StartedAt == nil {
			normal(ReasonWaveStarted, "Wave %s (%d of %d, %d nodes) started rolling out %s", w.Name, i+1, len(cur.Waves), w.Size, describe(cur.Target))
		}
		if w.HealthyAt != nil && was.HealthyAt == nil && w.Phase == rolloutsv1.WaveSoaking {
			normal(ReasonWaveHealthy, "Wave %s passed its gates; soaking", w.Name)
		}
		if w.Phase == rolloutsv1.WaveDone && was.Phase != rolloutsv1.WaveDone {
			normal(ReasonWaveCompleted, "Wave %s is done", w.Name)
		}
	}
	if cur.FailedGate != nil && (!sameRollout || old.FailedGate == nil) {
		warn(ReasonGateFailedEvent, "%s", failureMessage(cur.FailedGate))
	}
	if cur.Phase != old.Phase || !sameRollout {
		switch cur.Phase {
		case rolloutsv1.RolloutRolledBack:
			if cur.Message != "" && old.Phase != rolloutsv1.RolloutRolledBack {
				warn(ReasonRollingBack, "Rolling the nodes of the started waves back to what they ran before")
			}
		case rolloutsv1.RolloutCompleted:
			normal(ReasonRolloutCompleted, "Every wave of %s is done", describe(cur.Target))
		case rolloutsv1.RolloutAborted:
			warn(ReasonRolloutAborted, "The rollout of %s was aborted; rolling back", describe(cur.Target))
		}
	}
	if cur.Phase == rolloutsv1.RolloutRolledBack && old.Phase == rolloutsv1.RolloutRolledBack && sameRollout &&
		rolledBackAll(cur) && !rolledBackAll(old) {
		normal(ReasonRolledBack, "Every node changed is back on what it ran before")
	}
	return out
}

func rolledBackAll(st rolloutsv1.RolloutPolicyStatus) bool {
	for _, n := range st.Nodes {
		if n.Phase == rolloutsv1.NodeRollingBack {
			return false
		}
	}
	return true
}
