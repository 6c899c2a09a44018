package machineos

import (
	"testing"

	"github.com/stretchr/testify/assert"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/imagemode/imagemode/machineos/osbuild"
)

func TestJobState(t *testing.T) {
	now := metav1.Now()
	cond := func(t batchv1.JobConditionType) []batchv1.JobCondition {
		return []batchv1.JobCondition{{Type: t, Status: corev1.ConditionTrue}}
	}
	tests := []struct {
		name string
		job  batchv1.Job
		want osbuild.State
	}{
		{name: "no pod yet", want: osbuild.StatePrepared},
		{name: "pod pending or running", job: batchv1.Job{Status: batchv1.JobStatus{Active: 1}}, want: osbuild.StateBuilding},
		{name: "between retries", job: batchv1.Job{Status: batchv1.JobStatus{Failed: 2}}, want: osbuild.StateBuilding},
		{name: "uncounted terminated pods", job: batchv1.Job{Status: batchv1.JobStatus{UncountedTerminatedPods: &batchv1.UncountedTerminatedPods{}}}, want: osbuild.StateBuilding},
		{name: "succeeded, no conditions yet", job: batchv1.Job{Status: batchv1.JobStatus{Succeeded: 1}}, want: osbuild.StateSucceeded},
		{name: "complete", job: batchv1.Job{Status: batchv1.JobStatus{Succeeded: 1, Conditions: cond(batchv1.JobComplete)}}, want: osbuild.StateSucceeded},
		{name: "success criteria met, not complete yet", job: batchv1.Job{Status: batchv1.JobStatus{Succeeded: 1, Conditions: cond(batchv1.JobSuccessCriteriaMet)}}, want: osbuild.StateBuilding},
		{name: "fourth failure", job: batchv1.Job{Status: batchv1.JobStatus{Failed: 4}}, want: osbuild.StateFailed},
		{name: "failed condition", job: batchv1.Job{Status: batchv1.JobStatus{Failed: 1, Conditions: cond(batchv1.JobFailed)}}, want: osbuild.StateFailed},
		{name: "deleted while building", job: batchv1.Job{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}, Status: batchv1.JobStatus{Active: 1}}, want: osbuild.StateInterrupted},
		{name: "deleted after success", job: batchv1.Job{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}, Status: batchv1.JobStatus{Succeeded: 1}}, want: osbuild.StateSucceeded},
		{name: "deleted after failing", job: batchv1.Job{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}, Status: batchv1.JobStatus{Failed: 4}}, want: osbuild.StateFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, JobState(&tc.job))
		})
	}
}
