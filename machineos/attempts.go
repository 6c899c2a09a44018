package machineos

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/imagemode/imagemode/builder/jobs"
	"github.com/imagemode/imagemode/internal/wellknown"
)

// FailedAttemptsAnnotation on a MachineOSBuild lists its build Job's failed attempts (pods), oldest first,
// as JSON: [{"pod": name, "cause": why}]. Each is also a BuildAttemptFailed event; the last cause ends the
// Failed condition's message when the build fails.
const FailedAttemptsAnnotation = "imagemode.io/failed-attempts"

// EventBuildAttemptFailed is the Warning event for one failed build pod (the Job retries within its limit).
const EventBuildAttemptFailed = "BuildAttemptFailed"

// FailedAttempt is one failed build pod.
type FailedAttempt struct {
	Pod   string `json:"pod"`
	Cause string `json:"cause"`
}

// maxCause bounds one recorded cause (the last line of the pod's termination message is kept whole up to it).
const maxCause = 512

// DescribeFailedPod says why a build pod failed, in words a user can act on: deleted (with its exit code),
// killed for lack of memory (OOMKilled), killed by a signal, or its exit code and the last line of its
// termination message (the build's error, e.g. the push's). It returns "" for a pod that did not fail.
// Termination messages never hold credentials: the build pod gets them as files, and its errors name the
// registry and the image, not the auth.
func DescribeFailedPod(pod *corev1.Pod) string {
	if pod.Status.Phase != corev1.PodFailed {
		return ""
	}
	var term *corev1.ContainerStateTerminated
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.State.Terminated != nil {
			term = cs.State.Terminated
			break
		}
	}
	if term == nil {
		if pod.DeletionTimestamp != nil {
			return "the pod was deleted"
		}
		return strings.TrimSpace("the pod failed: " + pod.Status.Reason + " " + pod.Status.Message)
	}
	code := term.ExitCode
	switch {
	case pod.DeletionTimestamp != nil:
		return fmt.Sprintf("the pod was deleted (exit code %d)", code)
	case term.Reason == "OOMKilled":
		return fmt.Sprintf("out of memory: the container was OOMKilled (exit code %d)", code)
	case code == 137:
		return "the container was killed with SIGKILL (exit code 137), as the out-of-memory killer does"
	case code > 128 && code < 128+65:
		return fmt.Sprintf("the container was killed by signal %d (exit code %d)", code-128, code)
	}
	cause := fmt.Sprintf("the build exited with code %d", code)
	if line := lastLine(term.Message); line != "" {
		cause += ": " + line
	}
	if len(cause) > maxCause {
		cause = cause[:maxCause] + "…"
	}
	return cause
}

// lastLine is the last non-empty line of s, without a leading "error: " (or cobra's "Error: ").
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	line := strings.TrimSpace(lines[len(lines)-1])
	for _, p := range []string{"error: ", "Error: "} {
		line = strings.TrimPrefix(line, p)
	}
	return line
}

// FailedAttemptsOf reads a build's recorded attempts (none when the annotation is missing or unreadable).
func FailedAttemptsOf(mosb *mcfgv1.MachineOSBuild) []FailedAttempt {
	var out []FailedAttempt
	if v := mosb.Annotations[FailedAttemptsAnnotation]; v != "" {
		_ = json.Unmarshal([]byte(v), &out)
	}
	return out
}

// NewFailedAttempts returns the attempts of failed (pod name → cause) that recorded does not hold yet,
// ordered by pod name within the call (pods of one Job fail one at a time, so a pass rarely sees two), and
// recorded plus them, bounded to the Job's attempts.
func NewFailedAttempts(recorded []FailedAttempt, failed map[string]string) (added, all []FailedAttempt) {
	seen := map[string]bool{}
	for _, a := range recorded {
		seen[a.Pod] = true
	}
	var names []string
	for pod := range failed {
		if !seen[pod] {
			names = append(names, pod)
		}
	}
	sort.Strings(names)
	all = append(all, recorded...)
	for _, pod := range names {
		a := FailedAttempt{Pod: pod, Cause: failed[pod]}
		added = append(added, a)
		all = append(all, a)
	}
	if max := jobs.BackoffLimit + 1; len(all) > max {
		all = all[len(all)-max:]
	}
	return added, all
}

// attemptLog keeps the failures of build pods as the pod watch saw them: a deleted pod is gone from the
// API (the Job controller removes its tracking finalizer once it counted it) before the build reconciler
// may look, so its last status is remembered here, by build, until the reconciler recorded it.
type attemptLog struct {
	mu sync.Mutex
	// byBuild: build name → job UID → pod name → cause.
	byBuild map[string]map[types.UID]map[string]string
}

// observe remembers pod's failure, if it failed and belongs to a build's Job.
func (l *attemptLog) observe(pod *corev1.Pod) {
	build := pod.Labels[wellknown.MachineOSBuildLabel]
	cause := DescribeFailedPod(pod)
	if build == "" || cause == "" {
		return
	}
	var job types.UID
	for _, o := range pod.OwnerReferences {
		if o.Kind == "Job" && o.Controller != nil && *o.Controller {
			job = o.UID
		}
	}
	if job == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byBuild == nil {
		l.byBuild = map[string]map[types.UID]map[string]string{}
	}
	if l.byBuild[build] == nil {
		l.byBuild[build] = map[types.UID]map[string]string{}
	}
	if l.byBuild[build][job] == nil {
		l.byBuild[build][job] = map[string]string{}
	}
	if _, seen := l.byBuild[build][job][pod.Name]; !seen { // the first failure seen is the cause; a later deletion is not
		l.byBuild[build][job][pod.Name] = cause
	}
}

// failed returns the remembered failures of job's pods for build.
func (l *attemptLog) failed(build string, job types.UID) map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]string{}
	for pod, cause := range l.byBuild[build][job] {
		out[pod] = cause
	}
	return out
}

// forget drops what is remembered for build (recorded on it, or the build is over).
func (l *attemptLog) forget(build string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.byBuild, build)
}
