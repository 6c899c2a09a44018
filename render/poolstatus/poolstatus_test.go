package poolstatus

import (
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSetCondition(t *testing.T) {
	t.Parallel()
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Hour))
	cond := func(s corev1.ConditionStatus, reason, msg string) mcfgv1.MachineConfigPoolCondition {
		return mcfgv1.MachineConfigPoolCondition{Type: mcfgv1.MachineConfigPoolRenderDegraded, Status: s, Reason: reason, Message: msg}
	}
	tests := []struct {
		name        string
		existing    []mcfgv1.MachineConfigPoolCondition
		set         mcfgv1.MachineConfigPoolCondition
		wantChanged bool
		wantTime    metav1.Time
	}{
		{name: "new condition", set: cond(corev1.ConditionFalse, "", ""), wantChanged: true, wantTime: t1},
		{name: "same condition: no change, time kept",
			existing: []mcfgv1.MachineConfigPoolCondition{{Type: mcfgv1.MachineConfigPoolRenderDegraded, Status: corev1.ConditionFalse, LastTransitionTime: t0}},
			set:      cond(corev1.ConditionFalse, "", ""), wantChanged: false, wantTime: t0},
		{name: "status flips: time moves",
			existing: []mcfgv1.MachineConfigPoolCondition{{Type: mcfgv1.MachineConfigPoolRenderDegraded, Status: corev1.ConditionFalse, LastTransitionTime: t0}},
			set:      cond(corev1.ConditionTrue, "R", "m"), wantChanged: true, wantTime: t1},
		{name: "message only: changed, time kept",
			existing: []mcfgv1.MachineConfigPoolCondition{{Type: mcfgv1.MachineConfigPoolRenderDegraded, Status: corev1.ConditionTrue, Reason: "R", Message: "old", LastTransitionTime: t0}},
			set:      cond(corev1.ConditionTrue, "R", "new"), wantChanged: true, wantTime: t0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status := &mcfgv1.MachineConfigPoolStatus{Conditions: append([]mcfgv1.MachineConfigPoolCondition{
				{Type: mcfgv1.MachineConfigPoolUpdated, Status: corev1.ConditionTrue, LastTransitionTime: t0}}, tc.existing...)}
			assert.Equal(t, tc.wantChanged, SetCondition(status, tc.set, t1))
			got := FindCondition(status, mcfgv1.MachineConfigPoolRenderDegraded)
			assert.Equal(t, tc.set.Status, got.Status)
			assert.Equal(t, tc.set.Message, got.Message)
			assert.True(t, tc.wantTime.Equal(&got.LastTransitionTime), "transition time %v, want %v", got.LastTransitionTime, tc.wantTime)
			assert.True(t, IsTrue(status, mcfgv1.MachineConfigPoolUpdated), "other conditions untouched")
			assert.Len(t, status.Conditions, 2)
		})
	}
}
