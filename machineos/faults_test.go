package machineos_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos"
	"github.com/imagemode/imagemode/machineos/osbuild"
)

// newPoolMOSC creates pool p and its MachineOSConfig (named p, pushing to openshift/p:latest).
func newPoolMOSC(ctx context.Context, t *testing.T, e *env, p, containerfile string) {
	t.Helper()
	require.NoError(t, e.c.Create(ctx, pool(p, "worker", p)))
	m := docsMOSC(e.reg.Ref("openshift/"+p, ":latest"), containerfile)
	m.Name, m.Spec.MachineConfigPool.Name = p, p
	require.NoError(t, e.c.Create(ctx, m))
}

// runningPod waits for a running build pod of pool's build whose log (as the pod runner keeps it) contains
// marker, and returns it.
func runningPod(ctx context.Context, t *testing.T, e *env, pool, marker string) *corev1.Pod {
	t.Helper()
	var got *corev1.Pod
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		var pods corev1.PodList
		if err := e.c.List(ctx, &pods, client.InNamespace(wellknown.MCONamespace), client.MatchingLabels{wellknown.MachineOSConfigLabel: pool}); err != nil {
			return false, err
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
				continue
			}
			if log, _ := os.ReadFile(e.runner.LogPath(p, p.Spec.Containers[0].Name)); bytes.Contains(log, []byte(marker)) {
				got = p
				return true, nil
			}
		}
		return false, nil
	}), "no running build pod of pool %s reached %q", pool, marker)
	return got
}

// waitLog waits until pod's log holds text.
func waitLog(ctx context.Context, t *testing.T, e *env, pod *corev1.Pod, text string) {
	t.Helper()
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		log, _ := os.ReadFile(e.runner.LogPath(pod, pod.Spec.Containers[0].Name))
		return bytes.Contains(log, []byte(text)), nil
	}), "pod %s never logged %q", pod.Name, text)
}

// podProcess returns the pid of the process the pod runner started for pod (a child of this test process
// whose environment names the pod).
func podProcess(t *testing.T, pod *corev1.Pod) int {
	t.Helper()
	dirs, err := filepath.Glob("/proc/[0-9]*")
	require.NoError(t, err)
	for _, d := range dirs {
		stat, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after its closing parenthesis.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		environ, err := os.ReadFile(d + "/environ")
		if err == nil && bytes.Contains(environ, []byte("\x00HOSTNAME="+pod.Name+"\x00")) {
			pid, _ := strconv.Atoi(filepath.Base(d))
			return pid
		}
	}
	t.Fatalf("no process for pod %s", pod.Name)
	return 0
}

// buildEvents returns the messages of the events with reason about MachineOSBuild name.
func buildEvents(ctx context.Context, t *testing.T, c client.Client, name, reason string) []string {
	t.Helper()
	var msgs []string
	_ = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		var evs eventsv1.EventList
		if err := c.List(ctx, &evs); err != nil {
			return false, nil
		}
		msgs = nil
		for _, ev := range evs.Items {
			if ev.Regarding.Kind == "MachineOSBuild" && ev.Regarding.Name == name && ev.Reason == reason {
				msgs = append(msgs, ev.Note)
			}
		}
		return len(msgs) > 0, nil
	})
	return msgs
}

// TestFaultBuildPodDeletedOrKilled (issue 14, fault row 4): one build's pod is deleted while it builds,
// another's is killed with SIGKILL as the out-of-memory killer does (exit code 137). Each attempt is counted
// by the Job, retried within its limit, and the build succeeds; the build records the failed attempt and
// says which it was (annotation and a BuildAttemptFailed event).
func TestFaultBuildPodDeletedOrKilled(t *testing.T) {
	t.Parallel()
	e, ctx := startEnv(t)
	newPoolMOSC(ctx, t, e, "deleted", "FROM configs AS final\nRUN echo fault-window-deleted && sleep 3\n")
	newPoolMOSC(ctx, t, e, "oomkilled", "FROM configs AS final\nRUN echo fault-window-oomkilled && sleep 3\n")

	deleted := runningPod(ctx, t, e, "deleted", "fault-window-deleted")
	require.NoError(t, e.c.Delete(ctx, deleted))
	killed := runningPod(ctx, t, e, "oomkilled", "fault-window-oomkilled")
	require.NoError(t, syscall.Kill(podProcess(t, killed), syscall.SIGKILL))

	for _, tc := range []struct {
		pool string
		pod  *corev1.Pod
		want string
	}{
		{"deleted", deleted, "the pod was deleted (exit code 137)"},
		{"oomkilled", killed, "the container was killed with SIGKILL (exit code 137), as the out-of-memory killer does"},
	} {
		b := waitPoolBuild(ctx, t, e.c, tc.pool, func(b *mcfgv1.MachineOSBuild) bool { return osbuild.StateOf(b).IsTerminal() })
		require.Equal(t, osbuild.StateSucceeded, osbuild.StateOf(b), "build of %s retried and succeeded", tc.pool)
		attempts := machineos.FailedAttemptsOf(b)
		require.Len(t, attempts, 1, "one failed attempt recorded on %s: %s", b.Name, b.Annotations[machineos.FailedAttemptsAnnotation])
		assert.Equal(t, tc.pod.Name, attempts[0].Pod)
		assert.Equal(t, tc.want, attempts[0].Cause)
		assert.Contains(t, buildEvents(ctx, t, e.c, b.Name, machineos.EventBuildAttemptFailed),
			fmt.Sprintf("Attempt 1 of 4 (pod %s) failed: %s", tc.pod.Name, tc.want))
	}
}

// TestFaultRegistryDownDuringPush (issue 14, fault row 3): the registry refuses connections while a build
// pushes, then comes back: the push is retried with back-off inside the attempt and the build succeeds with
// no failed attempt. Down past the retry budget (every attempt's retries), the build fails with a Failed
// condition naming the registry and the error, no secret in it; once the registry is back, a rebuild
// succeeds.
func TestFaultRegistryDownDuringPush(t *testing.T) {
	t.Parallel()
	e, ctx := startEnv(t)

	// Down for a moment: the push's own retries (1 s, 2 s, 4 s) carry it.
	newPoolMOSC(ctx, t, e, "blip", "FROM configs AS final\nRUN echo fault-window-blip && sleep 3\n")
	pod := runningPod(ctx, t, e, "blip", "fault-window-blip")
	require.NoError(t, e.reg.Stop())
	waitLog(ctx, t, e, pod, "Failed, retrying in")
	require.NoError(t, e.reg.Restart(ctx))
	b := waitPoolBuild(ctx, t, e.c, "blip", func(b *mcfgv1.MachineOSBuild) bool { return osbuild.StateOf(b).IsTerminal() })
	require.Equal(t, osbuild.StateSucceeded, osbuild.StateOf(b))
	assert.Empty(t, machineos.FailedAttemptsOf(b), "the push was retried within the attempt")

	// Down for good: four attempts fail, the build fails naming the registry and the error.
	newPoolMOSC(ctx, t, e, "down", "FROM configs AS final\nRUN echo fault-window-down && sleep 2\n")
	runningPod(ctx, t, e, "down", "fault-window-down")
	require.NoError(t, e.reg.Stop())
	failed := waitPoolBuild(ctx, t, e.c, "down", func(b *mcfgv1.MachineOSBuild) bool { return osbuild.StateOf(b).IsTerminal() })
	require.Equal(t, osbuild.StateFailed, osbuild.StateOf(failed))
	cond := apimeta.FindStatusCondition(failed.Status.Conditions, string(mcfgv1.MachineOSBuildFailed))
	require.NotNil(t, cond)
	assert.Equal(t, "Failed", cond.Reason)
	assert.True(t, strings.HasPrefix(cond.Message, "Build Failed: attempt 4 (pod build-"+failed.Name+"-"), cond.Message)
	assert.Contains(t, cond.Message, e.reg.Host, "the condition names the registry")
	assert.Contains(t, cond.Message, "connection refused", "the condition names the error")
	for _, secret := range []string{e.reg.Password, b64(e.reg.Username + ":" + e.reg.Password)} {
		assert.NotContains(t, cond.Message, secret)
		assert.NotContains(t, failed.Annotations[machineos.FailedAttemptsAnnotation], secret)
	}
	assert.Len(t, machineos.FailedAttemptsOf(failed), 4)

	// The registry is back; a rebuild succeeds.
	require.NoError(t, e.reg.Restart(ctx))
	m := &mcfgv1.MachineOSConfig{}
	require.NoError(t, e.c.Get(ctx, types.NamespacedName{Name: "down"}, m))
	m.Annotations[wellknown.RebuildAnnotation] = ""
	require.NoError(t, e.c.Update(ctx, m))
	rebuilt := waitPoolBuild(ctx, t, e.c, "down", func(b *mcfgv1.MachineOSBuild) bool {
		return b.UID != failed.UID && osbuild.StateOf(b).IsTerminal()
	})
	assert.Equal(t, osbuild.StateSucceeded, osbuild.StateOf(rebuilt))
}

// manifestRevisions lists the manifests the registry stores for repository (its storage, not its tags: an
// untagged manifest left by a cancelled push is found too).
func manifestRevisions(t *testing.T, e *env, repository string) []string {
	t.Helper()
	dir := filepath.Join(e.reg.Dir, "data", "docker", "registry", "v2", "repositories", repository, "_manifests", "revisions", "sha256")
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var out []string
	for _, en := range entries {
		if _, err := os.Stat(filepath.Join(dir, en.Name(), "link")); err == nil { // a deleted manifest keeps its directory, not its link
			out = append(out, "sha256:"+en.Name())
		}
	}
	return out
}

// TestFaultMOSCEditedDuringBuild (issue 14, fault row 5): the MachineOSConfig's Containerfile is edited while
// its build runs. As the reference does when a new build starts, the running build (not successful) is
// deleted: its Job and pod go with it; the new build runs and succeeds, and the registry holds only the new
// build's image in the repository.
func TestFaultMOSCEditedDuringBuild(t *testing.T) {
	t.Parallel()
	e, ctx := startEnv(t)
	newPoolMOSC(ctx, t, e, "edited", "FROM configs AS final\nRUN echo fault-window-edited && sleep 60\n")
	pod := runningPod(ctx, t, e, "edited", "fault-window-edited")
	old := waitPoolBuild(ctx, t, e.c, "edited", func(b *mcfgv1.MachineOSBuild) bool { return osbuild.StateOf(b) == osbuild.StateBuilding })

	m := &mcfgv1.MachineOSConfig{}
	require.NoError(t, e.c.Get(ctx, types.NamespacedName{Name: "edited"}, m))
	m.Spec.Containerfile[0].Content = "FROM configs AS final\nRUN echo second > /etc/edited\n"
	require.NoError(t, e.c.Update(ctx, m))

	next := waitPoolBuild(ctx, t, e.c, "edited", func(b *mcfgv1.MachineOSBuild) bool {
		return b.Name != old.Name && osbuild.StateOf(b).IsTerminal()
	})
	require.Equal(t, osbuild.StateSucceeded, osbuild.StateOf(next))
	waitGone(ctx, t, e.c, old)
	waitGone(ctx, t, e.c, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: wellknown.MCONamespace, Name: "build-" + old.Name}})
	waitGone(ctx, t, e.c, pod)
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return !e.runner.Running(pod.UID), nil
	}), "the cancelled build's process still runs")
	digest := string(next.Status.DigestedImagePushSpec)
	assert.Equal(t, []string{digest[strings.LastIndex(digest, "@")+1:]}, manifestRevisions(t, e, "openshift/edited"),
		"only the new build's image is in the repository")
}

// TestFaultAPIServerDown (issue 14, fault row 1): kube-apiserver is stopped for 20 s while a build runs,
// then started again on the same etcd. The controllers, the pod runner and the build pod reconnect; the
// build finishes, recorded once: the same MachineOSBuild and Job, no failed attempt, one BuildCompleted.
func TestFaultAPIServerDown(t *testing.T) {
	t.Parallel()
	e, ctx := startEnv(t)
	newPoolMOSC(ctx, t, e, "outage", "FROM configs AS final\nRUN echo fault-window-outage && sleep 28\n")
	runningPod(ctx, t, e, "outage", "fault-window-outage")
	before := waitPoolBuild(ctx, t, e.c, "outage", func(b *mcfgv1.MachineOSBuild) bool { return osbuild.StateOf(b) == osbuild.StateBuilding })

	require.NoError(t, e.cp.StopAPIServer())
	var down error
	for range 3 {
		_, down = e.cp.Kube.Discovery().ServerVersion()
	}
	require.Error(t, down, "the API server is down")
	time.Sleep(20 * time.Second)
	require.NoError(t, e.cp.StartAPIServer())

	done := waitPoolBuild(ctx, t, e.c, "outage", func(b *mcfgv1.MachineOSBuild) bool { return osbuild.StateOf(b).IsTerminal() })
	require.Equal(t, osbuild.StateSucceeded, osbuild.StateOf(done))
	assert.Equal(t, before.UID, done.UID, "the same build")
	assert.Equal(t, before.Annotations[wellknown.JobUIDAnnotation], done.Annotations[wellknown.JobUIDAnnotation], "the same Job")
	assert.Empty(t, machineos.FailedAttemptsOf(done), "no attempt failed")
	var builds mcfgv1.MachineOSBuildList
	require.NoError(t, e.c.List(ctx, &builds, client.MatchingLabels{wellknown.MachineOSConfigLabel: "outage"}))
	assert.Len(t, builds.Items, 1, "one build")
	assert.Len(t, buildEvents(ctx, t, e.c, done.Name, machineos.EventBuildCompleted), 1, "recorded once")
	waitMOSCNamed(ctx, t, e, "outage", func(m *mcfgv1.MachineOSConfig) bool {
		return m.Status.CurrentImagePullSpec == done.Status.DigestedImagePushSpec
	})
}

// TestFaultLeaderKilledMidBuild (issue 14, fault row 6): two controller replicas with leader election; the
// leader is killed (its lease not released) while a build runs. The other takes over once the lease
// expires, the build is not started twice (the same Job, no failed attempt) and exactly one image is pushed.
func TestFaultLeaderKilledMidBuild(t *testing.T) {
	t.Parallel()
	e, ctx := startEnvWith(t, envOptions{noControllers: true})
	lease, renew, retry := 3*time.Second, 2*time.Second, 250*time.Millisecond
	replica := func() ctrl.Manager {
		return e.newControllerManager(t, ctrl.Options{LeaderElection: true, LeaderElectionID: "imagemode-controller",
			LeaderElectionNamespace: wellknown.MCONamespace, LeaseDuration: &lease, RenewDeadline: &renew, RetryPeriod: &retry})
	}
	a, b := replica(), replica()
	stopA := run(ctx, t, a)
	t.Cleanup(stopA)
	select {
	case <-a.Elected():
	case <-time.After(time.Minute):
		t.Fatal("replica a never became leader")
	}
	stopB := run(ctx, t, b)
	t.Cleanup(stopB)

	newPoolMOSC(ctx, t, e, "leader", "FROM configs AS final\nRUN echo fault-window-leader && sleep 6\n")
	runningPod(ctx, t, e, "leader", "fault-window-leader")
	before := waitPoolBuild(ctx, t, e.c, "leader", func(b *mcfgv1.MachineOSBuild) bool { return osbuild.StateOf(b) == osbuild.StateBuilding })
	select {
	case <-b.Elected():
		t.Fatal("replica b leads while a runs")
	default:
	}
	stopA() // killed: its lease is not released
	select {
	case <-b.Elected():
	case <-time.After(time.Minute):
		t.Fatal("replica b never took over")
	}

	done := waitPoolBuild(ctx, t, e.c, "leader", func(b *mcfgv1.MachineOSBuild) bool { return osbuild.StateOf(b).IsTerminal() })
	require.Equal(t, osbuild.StateSucceeded, osbuild.StateOf(done))
	assert.Equal(t, before.UID, done.UID, "the same build")
	assert.Equal(t, before.Annotations[wellknown.JobUIDAnnotation], done.Annotations[wellknown.JobUIDAnnotation], "not started twice")
	assert.Empty(t, machineos.FailedAttemptsOf(done))
	digest := string(done.Status.DigestedImagePushSpec)
	assert.Equal(t, []string{digest[strings.LastIndex(digest, "@")+1:]}, manifestRevisions(t, e, "openshift/leader"), "exactly one image pushed")
	waitMOSCNamed(ctx, t, e, "leader", func(m *mcfgv1.MachineOSConfig) bool {
		return m.Status.CurrentImagePullSpec == done.Status.DigestedImagePushSpec
	})
}
