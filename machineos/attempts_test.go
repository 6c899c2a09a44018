package machineos

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDescribeFailedPod(t *testing.T) {
	now := metav1.Now()
	pod := func(phase corev1.PodPhase, deleted bool, code int32, reason, msg string) *corev1.Pod {
		p := &corev1.Pod{Status: corev1.PodStatus{Phase: phase, ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, Message: msg}}}}}}
		if deleted {
			p.DeletionTimestamp = &now
		}
		return p
	}
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{"running", &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning}}, ""},
		{"succeeded", pod(corev1.PodSucceeded, false, 0, "Completed", ""), ""},
		{"deleted", pod(corev1.PodFailed, true, 137, "Killed", "the pod was deleted"), "the pod was deleted (exit code 137)"},
		{"deleted, exited on SIGTERM", pod(corev1.PodFailed, true, 143, "Error", ""), "the pod was deleted (exit code 143)"},
		{"OOMKilled", pod(corev1.PodFailed, false, 137, "OOMKilled", ""), "out of memory: the container was OOMKilled (exit code 137)"},
		{"SIGKILL", pod(corev1.PodFailed, false, 137, "Error", "STEP 2/3"), "the container was killed with SIGKILL (exit code 137), as the out-of-memory killer does"},
		{"SIGSEGV", pod(corev1.PodFailed, false, 139, "Error", ""), "the container was killed by signal 11 (exit code 139)"},
		{"error line", pod(corev1.PodFailed, false, 1, "Error", "STEP 1/2\nerror: pushing r:5000/x:latest: connection refused\n\n"),
			"the build exited with code 1: pushing r:5000/x:latest: connection refused"},
		{"cobra's Error", pod(corev1.PodFailed, false, 1, "Error", "Error: building Containerfile: exit status 7"),
			"the build exited with code 1: building Containerfile: exit status 7"},
		{"no message", pod(corev1.PodFailed, false, 2, "Error", ""), "the build exited with code 2"},
		{"no container status, deleted", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}, Status: corev1.PodStatus{Phase: corev1.PodFailed}}, "the pod was deleted"},
		{"no container status", &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted", Message: "low on memory"}}, "the pod failed: Evicted low on memory"},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, DescribeFailedPod(tc.pod)) })
	}
	long := DescribeFailedPod(pod(corev1.PodFailed, false, 1, "Error", string(make([]byte, 0))+stringOf('x', 2000)))
	assert.LessOrEqual(t, len(long), maxCause+len("…"))
}

func stringOf(c byte, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return string(b)
}

func TestNewFailedAttempts(t *testing.T) {
	rec := []FailedAttempt{{Pod: "p1", Cause: "a"}}
	added, all := NewFailedAttempts(rec, map[string]string{"p1": "a", "p3": "c", "p2": "b"})
	assert.Equal(t, []FailedAttempt{{"p2", "b"}, {"p3", "c"}}, added)
	assert.Equal(t, []FailedAttempt{{"p1", "a"}, {"p2", "b"}, {"p3", "c"}}, all)

	added, all = NewFailedAttempts(all, map[string]string{"p3": "c"})
	assert.Empty(t, added, "recorded attempts are not added twice")
	assert.Len(t, all, 3)

	_, all = NewFailedAttempts(all, map[string]string{"p4": "d", "p5": "e"})
	assert.Len(t, all, 4, "at most the Job's attempts are kept")
	assert.Equal(t, "p5", all[3].Pod)
}
