package osbuild

import (
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestConditions(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	for _, s := range []State{StateInitial, StatePrepared, StateBuilding, StateSucceeded, StateFailed, StateInterrupted} {
		t.Run("state "+string(s), func(t *testing.T) {
			conds := Conditions(s, nil, now)
			require.Len(t, conds, 5, "all five conditions are always written")
			trues := 0
			for _, c := range conds {
				if c.Status == metav1.ConditionTrue {
					trues++
					assert.Equal(t, string(s), c.Type)
				}
			}
			if s == StateInitial {
				assert.Zero(t, trues)
			} else {
				assert.Equal(t, 1, trues, "exactly one True")
			}
			assert.Equal(t, s, StateOf(&mcfgv1.MachineOSBuild{Status: mcfgv1.MachineOSBuildStatus{Conditions: conds}}))
		})
	}
	byType := map[string]metav1.Condition{}
	for _, c := range Conditions(StateSucceeded, nil, now) {
		byType[c.Type] = c
	}
	assert.Equal(t, "Ready", byType["Succeeded"].Reason)
	assert.Equal(t, "Build Ready", byType["Succeeded"].Message)
	assert.Equal(t, "Build Prepared and Pending", byType["Prepared"].Message)
	assert.Equal(t, "Image Build In Progress", byType["Building"].Message)
}

func TestConditionsKeepTransitionTimes(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Minute))
	prepared := Conditions(StatePrepared, nil, t0)
	building := Conditions(StateBuilding, prepared, t1)
	for _, c := range building {
		switch c.Type {
		case "Prepared", "Building":
			assert.True(t, t1.Equal(&c.LastTransitionTime), "%s changed status at t1", c.Type)
		default:
			assert.True(t, t0.Equal(&c.LastTransitionTime), "%s stayed False since t0", c.Type)
		}
	}
}

func TestCanTransition(t *testing.T) {
	all := []State{StateInitial, StatePrepared, StateBuilding, StateSucceeded, StateFailed, StateInterrupted}
	allowed := map[[2]State]bool{}
	for _, to := range all {
		allowed[[2]State{StateInitial, to}] = true
		allowed[[2]State{to, to}] = true
	}
	allowed[[2]State{StatePrepared, StateBuilding}] = true
	for _, from := range []State{StatePrepared, StateBuilding} {
		for _, to := range []State{StateSucceeded, StateFailed, StateInterrupted} {
			allowed[[2]State{from, to}] = true
		}
	}
	for _, from := range all {
		for _, to := range all {
			t.Run(string(from)+"->"+string(to), func(t *testing.T) {
				assert.Equal(t, allowed[[2]State{from, to}], CanTransition(from, to))
			})
		}
	}
	assert.False(t, CanTransition(StateBuilding, StatePrepared), "never back to Prepared")
	assert.False(t, CanTransition(StateFailed, StateBuilding), "a failed build is never restarted")
}

func TestBuildTimes(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 500_000_000, time.UTC))
	tests := []struct {
		name      string
		start     metav1.Time
		now       metav1.Time
		wantStart time.Time
		wantEnd   time.Time
	}{
		{"same instant", t0, t0, t0.Truncate(time.Second), t0.Truncate(time.Second).Add(time.Second)},
		{"same second", t0, metav1.NewTime(t0.Add(300 * time.Millisecond)), t0.Truncate(time.Second), t0.Truncate(time.Second).Add(time.Second)},
		{"minutes later", t0, metav1.NewTime(t0.Add(3 * time.Minute)), t0.Truncate(time.Second), t0.Add(3 * time.Minute).Truncate(time.Second)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, e := BuildTimes(tc.start, tc.now)
			assert.True(t, s.Time.Equal(tc.wantStart), "start %v", s)
			assert.True(t, e.Time.Equal(tc.wantEnd), "end %v", e)
			assert.True(t, e.After(s.Time), "the API requires buildEnd after buildStart")
		})
	}
}

func TestStateOfPrefersTerminalStates(t *testing.T) {
	t.Parallel()
	cond := func(s State, status metav1.ConditionStatus) metav1.Condition {
		return metav1.Condition{Type: string(s), Status: status}
	}
	tests := []struct {
		name        string
		conds       []metav1.Condition
		want        State
		wantDisplay string
	}{
		{name: "no conditions", want: StateInitial, wantDisplay: "Pending"},
		{name: "all false", conds: []metav1.Condition{cond(StatePrepared, metav1.ConditionFalse), cond(StateBuilding, metav1.ConditionFalse)}, want: StateInitial, wantDisplay: "Pending"},
		{name: "building", conds: []metav1.Condition{cond(StateBuilding, metav1.ConditionTrue)}, want: StateBuilding, wantDisplay: "Building"},
		{name: "terminal wins over transient whatever the order", conds: []metav1.Condition{cond(StateBuilding, metav1.ConditionTrue), cond(StateFailed, metav1.ConditionTrue)}, want: StateFailed, wantDisplay: "Failed"},
		{name: "unknown types ignored", conds: []metav1.Condition{{Type: "Other", Status: metav1.ConditionTrue}}, want: StateInitial, wantDisplay: "Pending"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := StateOf(&mcfgv1.MachineOSBuild{Status: mcfgv1.MachineOSBuildStatus{Conditions: tc.conds}})
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.wantDisplay, got.Display())
		})
	}
}
