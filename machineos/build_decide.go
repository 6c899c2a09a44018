package machineos

import (
	"fmt"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos/osbuild"
)

// BuildObservation is what the build reconciler read about one MachineOSBuild.
type BuildObservation struct {
	Build *mcfgv1.MachineOSBuild
	// Job is the Job named after the build (osbuild.JobName), nil when there is none; it may belong to an
	// earlier build of the same name.
	Job *batchv1.Job
	// Digest is the digest the build pod recorded in its digest ConfigMap, "" when none is recorded yet;
	// DigestProblem says why there is none (the ConfigMap is missing or empty, or could not be read).
	Digest, DigestProblem string
	// Attempts are the build Job's failed attempts recorded on the build, oldest first.
	Attempts []FailedAttempt
	Now      time.Time
}

// BuildAction is what the build reconciler does next.
type BuildAction string

const (
	// BuildNothing: the build needs nothing now (terminal, or its Job's progress maps to its state).
	BuildNothing BuildAction = "Nothing"
	// BuildDeleteEarlierJob: the Job belongs to an earlier build of the same name; delete it and wait.
	BuildDeleteEarlierJob BuildAction = "DeleteEarlierJob"
	// BuildStart: prepare the build and create its Job and objects.
	BuildStart BuildAction = "Start"
	// BuildCleanUp: delete a successful build's Job (its ConfigMaps and Secrets go with it).
	BuildCleanUp BuildAction = "CleanUp"
	// BuildFollow: the Job runs; adopt it if needed and move the build to Step.Next if that differs.
	BuildFollow BuildAction = "Follow"
)

// BuildStep is the decision for one pass.
type BuildStep struct {
	Action BuildAction
	// AdoptJob (Follow): the build does not record this Job's UID yet (a crash between creating the Job and
	// recording it): complete the Job's ConfigMaps and Secrets and record the UID first.
	AdoptJob bool
	// Next is the state to write, when it differs from the build's (Follow, or Interrupted for a Job deleted
	// during the build); empty when the state stays.
	Next osbuild.State
	// Digested is the pushed image by digest, for a build that Succeeded.
	Digested string
	// EventType, EventReason and EventMessage are the event that goes with the step, if any.
	EventType, EventReason, EventMessage string
	// Sign (a build that Succeeded, with a signing key): sign the image Digested before writing the state;
	// the build is Succeeded, and its image published, only once the signature is stored.
	Sign bool
	// RequeueAfter asks for another pass later (a successful build's pod still closing its store).
	RequeueAfter time.Duration
	// FailedCause (Failed) is why the last attempt failed; it ends the Failed condition's message.
	FailedCause string
}

// DecideBuild is the build state machine's transition: from the build, its Job and the recorded digest, the
// one thing to do next. It reads no clock and makes no call; the reconciler observes and acts.
//   - A Job of an earlier build of the same name is deleted first, whatever the build's state.
//   - A Succeeded build's Job is deleted once its pod has exited, or cleanupGrace after the build ended.
//   - Failed and Interrupted builds keep their objects for inspection.
//   - A build whose Job went away after it was recorded was Interrupted; one with no Job yet starts.
//   - Otherwise the Job's progress (JobState) gives the state, with two refinements: a recorded digest
//     means Succeeded even before the Job controller counts the pod, and a Job that succeeded without a
//     recorded digest Failed.
func DecideBuild(o BuildObservation) (BuildStep, error) {
	mosb, job := o.Build, o.Job
	state := osbuild.StateOf(mosb)
	if job != nil && !metav1.IsControlledBy(job, mosb) {
		return BuildStep{Action: BuildDeleteEarlierJob}, nil
	}
	recordedUID := mosb.Annotations[wellknown.JobUIDAnnotation]
	switch {
	case state == osbuild.StateSucceeded:
		return decideCleanUp(o), nil
	case state.IsTerminal():
		return BuildStep{Action: BuildNothing}, nil
	case job == nil && recordedUID != "":
		return BuildStep{Action: BuildFollow, Next: osbuild.StateInterrupted, EventType: corev1.EventTypeWarning,
			EventReason: EventBuildInterrupted, EventMessage: fmt.Sprintf("Job %s was deleted during the build", osbuild.JobName(mosb.Name))}, nil
	case job == nil:
		return BuildStep{Action: BuildStart}, nil
	}

	step := BuildStep{Action: BuildFollow, AdoptJob: recordedUID != string(job.UID)}
	next := JobState(job)
	if next == osbuild.StateBuilding && o.Digest != "" {
		// The build pod records the digest only once the image is pushed: the build has succeeded, even if
		// the Job controller (which batches pod updates) has not counted it yet.
		next = osbuild.StateSucceeded
	}
	if next == state || !osbuild.CanTransition(state, next) {
		return step, nil
	}
	step.Next = next
	switch next {
	case osbuild.StateSucceeded:
		if o.Digest == "" {
			step.Next = osbuild.StateFailed
			step.EventType, step.EventReason = corev1.EventTypeWarning, EventBuildFailed
			step.EventMessage = fmt.Sprintf("Job %s succeeded but configmap %s holds no digest (%s)", job.Name, osbuild.DigestCMName(mosb.Name), o.DigestProblem)
			return step, nil
		}
		digested, err := DigestedPullSpec(string(mosb.Spec.RenderedImagePushSpec), o.Digest)
		if err != nil {
			return BuildStep{}, err
		}
		step.Digested = digested
		step.Sign = signingSecret(mosb) != ""
		step.EventType, step.EventReason, step.EventMessage = corev1.EventTypeNormal, EventBuildCompleted, "Build completed: "+digested
	case osbuild.StateFailed:
		step.EventType, step.EventReason = corev1.EventTypeWarning, EventBuildFailed
		step.EventMessage = fmt.Sprintf("Build failed after %d attempts (job %s)", job.Status.Failed, job.Name)
		if n := len(o.Attempts); n > 0 {
			step.FailedCause = fmt.Sprintf("attempt %d (pod %s): %s", n, o.Attempts[n-1].Pod, o.Attempts[n-1].Cause)
			step.EventMessage += ": last " + step.FailedCause
		}
	case osbuild.StateInterrupted:
		step.EventType, step.EventReason = corev1.EventTypeWarning, EventBuildInterrupted
		step.EventMessage = fmt.Sprintf("Job %s was deleted during the build", job.Name)
	}
	return step, nil
}

// decideCleanUp is the step for a Succeeded build: its Job is deleted once its pod has exited (the build is
// Succeeded as soon as the digest is recorded, but the pod still closes its image store — the layer cache —
// and killing it then could leave the cache unusable), or cleanupGrace after the build ended.
func decideCleanUp(o BuildObservation) BuildStep {
	mosb, job := o.Build, o.Job
	if job == nil || job.DeletionTimestamp != nil || string(job.UID) != mosb.Annotations[wellknown.JobUIDAnnotation] {
		return BuildStep{Action: BuildNothing}
	}
	finished := job.Status.Succeeded > 0 || hasCondition(job, batchv1.JobComplete) || hasCondition(job, batchv1.JobFailed)
	if !finished && mosb.Status.BuildEnd != nil {
		if left := cleanupGrace - o.Now.Sub(mosb.Status.BuildEnd.Time); left > 0 {
			return BuildStep{Action: BuildNothing, RequeueAfter: left} // the Job's status change brings the build back sooner
		}
	}
	return BuildStep{Action: BuildCleanUp}
}
