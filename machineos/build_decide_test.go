package machineos

import (
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos/osbuild"
)

func TestDecideBuild(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	build := func(state osbuild.State, jobUID string, buildEnd *time.Time) *mcfgv1.MachineOSBuild {
		b := &mcfgv1.MachineOSBuild{ObjectMeta: metav1.ObjectMeta{Name: "worker-abc", UID: "build-uid", Annotations: map[string]string{}},
			Spec: mcfgv1.MachineOSBuildSpec{RenderedImagePushSpec: "registry.example.com/os/image:worker-abc"}}
		if jobUID != "" {
			b.Annotations[wellknown.JobUIDAnnotation] = jobUID
		}
		b.Status.Conditions = osbuild.Conditions(state, nil, metav1.NewTime(now))
		if buildEnd != nil {
			b.Status.BuildEnd = &metav1.Time{Time: *buildEnd}
		}
		return b
	}
	job := func(owner types.UID, status batchv1.JobStatus, mutate ...func(*batchv1.Job)) *batchv1.Job {
		j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "build-worker-abc", UID: "job-uid",
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "machineconfiguration.openshift.io/v1", Kind: "MachineOSBuild",
				Name: "worker-abc", UID: owner, Controller: ptr.To(true)}}}, Status: status}
		for _, m := range mutate {
			m(j)
		}
		return j
	}
	deleting := func(j *batchv1.Job) { j.DeletionTimestamp = &metav1.Time{Time: now} }
	complete := batchv1.JobStatus{Succeeded: 1, Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}}
	running := batchv1.JobStatus{Active: 1}
	justEnded, longAgo := now.Add(-10*time.Second), now.Add(-time.Hour)

	tests := []struct {
		name string
		obs  BuildObservation
		want BuildStep
	}{
		{name: "initial, no job: start", obs: BuildObservation{Build: build(osbuild.StateInitial, "", nil)},
			want: BuildStep{Action: BuildStart}},
		{name: "a job of an earlier build of the same name is deleted first",
			obs:  BuildObservation{Build: build(osbuild.StateInitial, "", nil), Job: job("earlier-uid", running)},
			want: BuildStep{Action: BuildDeleteEarlierJob}},
		{name: "an earlier build's job is deleted even for a succeeded build",
			obs:  BuildObservation{Build: build(osbuild.StateSucceeded, "job-uid", &longAgo), Job: job("earlier-uid", complete)},
			want: BuildStep{Action: BuildDeleteEarlierJob}},
		{name: "job created, uid not recorded yet: adopt it, state stays Prepared",
			obs:  BuildObservation{Build: build(osbuild.StatePrepared, "", nil), Job: job("build-uid", batchv1.JobStatus{})},
			want: BuildStep{Action: BuildFollow, AdoptJob: true}},
		{name: "initial build whose job has no pod yet goes Prepared",
			obs:  BuildObservation{Build: build(osbuild.StateInitial, "job-uid", nil), Job: job("build-uid", batchv1.JobStatus{})},
			want: BuildStep{Action: BuildFollow, Next: osbuild.StatePrepared}},
		{name: "pod running: Building",
			obs:  BuildObservation{Build: build(osbuild.StatePrepared, "job-uid", nil), Job: job("build-uid", running)},
			want: BuildStep{Action: BuildFollow, Next: osbuild.StateBuilding}},
		{name: "building and still running: nothing",
			obs:  BuildObservation{Build: build(osbuild.StateBuilding, "job-uid", nil), Job: job("build-uid", running)},
			want: BuildStep{Action: BuildFollow}},
		{name: "digest recorded before the job controller counts the pod: Succeeded",
			obs: BuildObservation{Build: build(osbuild.StateBuilding, "job-uid", nil), Job: job("build-uid", running), Digest: digest},
			want: BuildStep{Action: BuildFollow, Next: osbuild.StateSucceeded, Digested: "registry.example.com/os/image@" + digest,
				EventType: corev1.EventTypeNormal, EventReason: EventBuildCompleted, EventMessage: "Build completed: registry.example.com/os/image@" + digest}},
		{name: "a build with a signing key signs before it is Succeeded",
			obs: BuildObservation{Build: signedBuild(build(osbuild.StateBuilding, "job-uid", nil)), Job: job("build-uid", complete), Digest: digest},
			want: BuildStep{Action: BuildFollow, Next: osbuild.StateSucceeded, Digested: "registry.example.com/os/image@" + digest, Sign: true,
				EventType: corev1.EventTypeNormal, EventReason: EventBuildCompleted, EventMessage: "Build completed: registry.example.com/os/image@" + digest}},
		{name: "a signed build that failed signs nothing",
			obs:  BuildObservation{Build: signedBuild(build(osbuild.StateBuilding, "job-uid", nil)), Job: job("build-uid", batchv1.JobStatus{Failed: 4, Conditions: []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue}}})},
			want: BuildStep{Action: BuildFollow, Next: osbuild.StateFailed, EventType: corev1.EventTypeWarning, EventReason: EventBuildFailed, EventMessage: "Build failed after 4 attempts (job build-worker-abc)"}},
		{name: "job succeeded without a recorded digest: Failed",
			obs: BuildObservation{Build: build(osbuild.StateBuilding, "job-uid", nil), Job: job("build-uid", complete), DigestProblem: "not found"},
			want: BuildStep{Action: BuildFollow, Next: osbuild.StateFailed, EventType: corev1.EventTypeWarning, EventReason: EventBuildFailed,
				EventMessage: "Job build-worker-abc succeeded but configmap digest-worker-abc holds no digest (not found)"}},
		{name: "fourth pod failure: Failed",
			obs: BuildObservation{Build: build(osbuild.StateBuilding, "job-uid", nil), Job: job("build-uid", batchv1.JobStatus{Failed: 4})},
			want: BuildStep{Action: BuildFollow, Next: osbuild.StateFailed, EventType: corev1.EventTypeWarning, EventReason: EventBuildFailed,
				EventMessage: "Build failed after 4 attempts (job build-worker-abc)"}},
		{name: "fourth pod failure with recorded attempts: Failed, naming the last cause",
			obs: BuildObservation{Build: build(osbuild.StateBuilding, "job-uid", nil), Job: job("build-uid", batchv1.JobStatus{Failed: 4}),
				Attempts: []FailedAttempt{{Pod: "p1", Cause: "the pod was deleted (exit code 137)"}, {Pod: "p2", Cause: "the build exited with code 1: pushing r/x: connection refused"}}},
			want: BuildStep{Action: BuildFollow, Next: osbuild.StateFailed, EventType: corev1.EventTypeWarning, EventReason: EventBuildFailed,
				EventMessage: "Build failed after 4 attempts (job build-worker-abc): last attempt 2 (pod p2): the build exited with code 1: pushing r/x: connection refused",
				FailedCause:  "attempt 2 (pod p2): the build exited with code 1: pushing r/x: connection refused"}},
		{name: "job being deleted mid-build: Interrupted",
			obs: BuildObservation{Build: build(osbuild.StateBuilding, "job-uid", nil), Job: job("build-uid", running, deleting)},
			want: BuildStep{Action: BuildFollow, Next: osbuild.StateInterrupted, EventType: corev1.EventTypeWarning, EventReason: EventBuildInterrupted,
				EventMessage: "Job build-worker-abc was deleted during the build"}},
		{name: "job gone after it was recorded: Interrupted",
			obs: BuildObservation{Build: build(osbuild.StateBuilding, "job-uid", nil)},
			want: BuildStep{Action: BuildFollow, Next: osbuild.StateInterrupted, EventType: corev1.EventTypeWarning, EventReason: EventBuildInterrupted,
				EventMessage: "Job build-worker-abc was deleted during the build"}},
		{name: "failed builds keep their objects", obs: BuildObservation{Build: build(osbuild.StateFailed, "job-uid", &longAgo), Job: job("build-uid", batchv1.JobStatus{Failed: 4})},
			want: BuildStep{Action: BuildNothing}},
		{name: "interrupted builds keep their objects", obs: BuildObservation{Build: build(osbuild.StateInterrupted, "job-uid", &longAgo)},
			want: BuildStep{Action: BuildNothing}},
		{name: "succeeded, pod exited: clean up", obs: BuildObservation{Build: build(osbuild.StateSucceeded, "job-uid", &justEnded), Job: job("build-uid", complete), Now: now},
			want: BuildStep{Action: BuildCleanUp}},
		{name: "succeeded, pod still closing its store: wait out the grace", obs: BuildObservation{Build: build(osbuild.StateSucceeded, "job-uid", &justEnded), Job: job("build-uid", running), Now: now},
			want: BuildStep{Action: BuildNothing, RequeueAfter: 20 * time.Second}},
		{name: "succeeded, grace over: clean up", obs: BuildObservation{Build: build(osbuild.StateSucceeded, "job-uid", &longAgo), Job: job("build-uid", running), Now: now},
			want: BuildStep{Action: BuildCleanUp}},
		{name: "succeeded, job already going", obs: BuildObservation{Build: build(osbuild.StateSucceeded, "job-uid", &longAgo), Job: job("build-uid", complete, deleting), Now: now},
			want: BuildStep{Action: BuildNothing}},
		{name: "succeeded, job gone", obs: BuildObservation{Build: build(osbuild.StateSucceeded, "job-uid", &longAgo), Now: now},
			want: BuildStep{Action: BuildNothing}},
		{name: "succeeded, job of this build but another uid than recorded: left alone",
			obs:  BuildObservation{Build: build(osbuild.StateSucceeded, "other-uid", &longAgo), Job: job("build-uid", complete), Now: now},
			want: BuildStep{Action: BuildNothing}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecideBuild(tc.obs)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}

	t.Run("an unparsable push spec is an error", func(t *testing.T) {
		t.Parallel()
		b := build(osbuild.StateBuilding, "job-uid", nil)
		b.Spec.RenderedImagePushSpec = "Not A Reference"
		_, err := DecideBuild(BuildObservation{Build: b, Job: job("build-uid", running), Digest: digest})
		require.Error(t, err)
	})
}

func signedBuild(b *mcfgv1.MachineOSBuild) *mcfgv1.MachineOSBuild {
	b.Annotations[SigningKeySecretAnnotation] = "os-signing-key"
	return b
}
