package machineos

import (
	"testing"

	"github.com/stretchr/testify/assert"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestJobState(t *testing.T) {
	now := metav1.Now()
	cond := func(t batchv1.JobConditionType) []batchv1.JobCondition {
		return []batchv1.JobCondition{{Type: t, Status: corev1.ConditionTrue}}
	}
	tests := []struct {
		name string
		job  batchv1.Job
		want State
	}{
		{name: "no pod yet", want: StatePrepared},
		{name: "pod pending or running", job: batchv1.Job{Status: batchv1.JobStatus{Active: 1}}, want: StateBuilding},
		{name: "between retries", job: batchv1.Job{Status: batchv1.JobStatus{Failed: 2}}, want: StateBuilding},
		{name: "uncounted terminated pods", job: batchv1.Job{Status: batchv1.JobStatus{UncountedTerminatedPods: &batchv1.UncountedTerminatedPods{}}}, want: StateBuilding},
		{name: "succeeded, no conditions yet", job: batchv1.Job{Status: batchv1.JobStatus{Succeeded: 1}}, want: StateSucceeded},
		{name: "complete", job: batchv1.Job{Status: batchv1.JobStatus{Succeeded: 1, Conditions: cond(batchv1.JobComplete)}}, want: StateSucceeded},
		{name: "success criteria met, not complete yet", job: batchv1.Job{Status: batchv1.JobStatus{Succeeded: 1, Conditions: cond(batchv1.JobSuccessCriteriaMet)}}, want: StateBuilding},
		{name: "fourth failure", job: batchv1.Job{Status: batchv1.JobStatus{Failed: 4}}, want: StateFailed},
		{name: "failed condition", job: batchv1.Job{Status: batchv1.JobStatus{Failed: 1, Conditions: cond(batchv1.JobFailed)}}, want: StateFailed},
		{name: "deleted while building", job: batchv1.Job{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}, Status: batchv1.JobStatus{Active: 1}}, want: StateInterrupted},
		{name: "deleted after success", job: batchv1.Job{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}, Status: batchv1.JobStatus{Succeeded: 1}}, want: StateSucceeded},
		{name: "deleted after failing", job: batchv1.Job{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}, Status: batchv1.JobStatus{Failed: 4}}, want: StateFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, JobState(&tc.job))
		})
	}
}
