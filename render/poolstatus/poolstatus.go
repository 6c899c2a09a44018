// Package poolstatus reads and writes MachineConfigPool status conditions. Each controller that reports on
// a pool (render, rollout, build) sets its own condition types through SetCondition, which changes
// LastTransitionTime only when the status flips, so a pass that changes nothing writes nothing.
package poolstatus

import (
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FindCondition returns the condition of type t, or nil.
func FindCondition(status *mcfgv1.MachineConfigPoolStatus, t mcfgv1.MachineConfigPoolConditionType) *mcfgv1.MachineConfigPoolCondition {
	for i := range status.Conditions {
		if status.Conditions[i].Type == t {
			return &status.Conditions[i]
		}
	}
	return nil
}

// IsTrue reports whether the condition of type t is present and True.
func IsTrue(status *mcfgv1.MachineConfigPoolStatus, t mcfgv1.MachineConfigPoolConditionType) bool {
	c := FindCondition(status, t)
	return c != nil && c.Status == corev1.ConditionTrue
}

// SetCondition sets cond (its LastTransitionTime is ignored) and reports whether anything changed. The
// transition time becomes now when the status changes or the condition is new, and is kept otherwise.
func SetCondition(status *mcfgv1.MachineConfigPoolStatus, cond mcfgv1.MachineConfigPoolCondition, now metav1.Time) bool {
	existing := FindCondition(status, cond.Type)
	if existing == nil {
		cond.LastTransitionTime = now
		status.Conditions = append(status.Conditions, cond)
		return true
	}
	if existing.Status == cond.Status && existing.Reason == cond.Reason && existing.Message == cond.Message {
		return false
	}
	if existing.Status != cond.Status {
		existing.LastTransitionTime = now
	}
	existing.Status, existing.Reason, existing.Message = cond.Status, cond.Reason, cond.Message
	return true
}
