package agent

import (
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestApplyConditions(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Minute))
	// fresh is what a MachineConfigNode the daemon never wrote gets: every type, False, NotYetOccurred.
	fresh, changed := ApplyConditions(nil, 3, "rendered-worker-1", nil, t0)
	require.True(t, changed)
	require.Len(t, fresh, len(mcnConditionTypes))
	for _, c := range fresh {
		assert.Equal(t, metav1.ConditionFalse, c.Status, c.Type)
		assert.Equal(t, NotYetOccurred, c.Reason, c.Type)
		assert.Equal(t, int64(3), c.ObservedGeneration, c.Type)
	}
	// done is a node after an update: everything it went through True.
	done, _ := ApplyConditions(fresh, 3, "rendered-worker-1", []Cond{
		{Type: mcfgv1.MachineConfigNodeUpdatePrepared, Status: "True", Message: "prepared"},
		{Type: mcfgv1.MachineConfigNodeUpdateDrained, Status: "True", Message: "Drained node"},
		{Type: mcfgv1.MachineConfigNodeUpdated, Status: "True", Message: "Node Updated"},
	}, t0)

	type want struct {
		status  metav1.ConditionStatus
		reason  string
		message string
		time    metav1.Time
	}
	tests := []struct {
		name        string
		existing    []metav1.Condition
		changes     []Cond
		wantChanged bool
		want        map[mcfgv1.StateProgress]want
	}{
		{
			name: "missing types are added", existing: nil, wantChanged: true,
			want: map[mcfgv1.StateProgress]want{
				mcfgv1.MachineConfigNodeNodeDegraded: {"False", NotYetOccurred, "This action has not yet occurred", t1},
			},
		},
		{
			name: "nothing changes: transition times kept", existing: done, wantChanged: false,
			changes: []Cond{{Type: mcfgv1.MachineConfigNodeUpdated, Status: "True", Message: "Node Updated"}},
			want: map[mcfgv1.StateProgress]want{
				mcfgv1.MachineConfigNodeUpdated: {"True", "Updated", "Node Updated", t0},
			},
		},
		{
			name: "a child's reason is its parent's type and its own", existing: fresh, wantChanged: true,
			changes: []Cond{{Type: mcfgv1.MachineConfigNodeUpdateDrained, Status: "True", Message: "Drained node"},
				{Type: mcfgv1.MachineConfigNodeUpdateRebooted, Status: "Unknown", Message: "Rebooting"}},
			want: map[mcfgv1.StateProgress]want{
				mcfgv1.MachineConfigNodeUpdateDrained:  {"True", "UpdateExecutedDrained", "Drained node", t1},
				mcfgv1.MachineConfigNodeUpdateRebooted: {"Unknown", "UpdatePostActionCompleteRebootedNode", "Rebooting", t1},
			},
		},
		{
			name: "a new update (Updated=False) resets the other True conditions", existing: done, wantChanged: true,
			changes: []Cond{{Type: mcfgv1.MachineConfigNodeUpdated, Status: "False", Message: "needs an update"}},
			want: map[mcfgv1.StateProgress]want{
				mcfgv1.MachineConfigNodeUpdated:        {"False", "Updated", "needs an update", t1},
				mcfgv1.MachineConfigNodeUpdatePrepared: {"False", "UpdatePrepared", "Action during update to rendered-worker-2: prepared", t1},
				mcfgv1.MachineConfigNodeUpdateDrained:  {"False", "UpdateExecutedDrained", "Action during update to rendered-worker-2: Drained node", t1},
				// Already False: left as it was.
				mcfgv1.MachineConfigNodeNodeDegraded: {"False", NotYetOccurred, "This action has not yet occurred", t0},
			},
		},
		{
			name: "the same Updated=False again resets nothing", wantChanged: false,
			existing: func() []metav1.Condition {
				c, _ := ApplyConditions(done, 3, "rendered-worker-2", []Cond{{Type: mcfgv1.MachineConfigNodeUpdated, Status: "False", Message: "needs an update"},
					{Type: mcfgv1.MachineConfigNodeUpdatePrepared, Status: "True", Message: "prepared again"}}, t0)
				return c
			}(),
			changes: []Cond{{Type: mcfgv1.MachineConfigNodeUpdated, Status: "False", Message: "needs an update"}},
			want: map[mcfgv1.StateProgress]want{
				mcfgv1.MachineConfigNodeUpdatePrepared: {"True", "UpdatePrepared", "prepared again", t0},
			},
		},
		{
			name: "degraded", existing: done, wantChanged: true,
			changes: []Cond{{Type: mcfgv1.MachineConfigNodeNodeDegraded, Status: "True", Message: "drift in /etc/foo"}},
			want: map[mcfgv1.StateProgress]want{
				mcfgv1.MachineConfigNodeNodeDegraded: {"True", "NodeDegraded", "drift in /etc/foo", t1},
				mcfgv1.MachineConfigNodeUpdated:      {"True", "Updated", "Node Updated", t0},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := append([]metav1.Condition(nil), tt.existing...)
			got, changed := ApplyConditions(tt.existing, 3, "rendered-worker-2", tt.changes, t1)
			assert.Equal(t, tt.wantChanged, changed)
			assert.Equal(t, before, tt.existing, "the input is not modified")
			assert.Len(t, got, len(mcnConditionTypes))
			for typ, w := range tt.want {
				c := meta.FindStatusCondition(got, string(typ))
				require.NotNil(t, c, typ)
				assert.Equal(t, w.status, c.Status, typ)
				assert.Equal(t, w.reason, c.Reason, typ)
				assert.Equal(t, w.message, c.Message, typ)
				assert.True(t, w.time.Equal(&c.LastTransitionTime), "%s: transition time %v, want %v", typ, c.LastTransitionTime, w.time)
			}
		})
	}
}
