package machineos

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/imagemode/imagemode/builder/jobs"
	"github.com/imagemode/imagemode/machineos/osbuild"
)

// JobState maps a build Job to the build's state, as the reference does:
//   - a Job being deleted before it succeeded was interrupted;
//   - a Job that started no pod yet is Prepared;
//   - a Job with a success is Succeeded, unless the Job says it Failed (then Failed) or is not done yet;
//   - more failed pods than the back-off limit allows, or a Failed condition, is Failed;
//   - otherwise (running, or between retries) it is Building.
func JobState(job *batchv1.Job) osbuild.State {
	st := job.Status
	failedCond := hasCondition(job, batchv1.JobFailed)
	switch {
	case job.DeletionTimestamp != nil && st.Succeeded == 0 && st.Failed <= jobs.BackoffLimit:
		return osbuild.StateInterrupted
	case st.Succeeded > 0:
		switch {
		case failedCond:
			return osbuild.StateFailed
		case len(st.Conditions) == 0 || hasCondition(job, batchv1.JobComplete):
			return osbuild.StateSucceeded
		default:
			return osbuild.StateBuilding
		}
	case st.Failed > jobs.BackoffLimit || failedCond:
		return osbuild.StateFailed
	case st.Active == 0 && st.Failed == 0 && st.UncountedTerminatedPods == nil && ptrValue(st.Ready) == 0:
		return osbuild.StatePrepared
	default:
		return osbuild.StateBuilding
	}
}

func hasCondition(job *batchv1.Job, t batchv1.JobConditionType) bool {
	for _, c := range job.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func ptrValue(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}
