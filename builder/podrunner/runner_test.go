package podrunner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/imagemode/imagemode/internal/controlplane"
)

const ns = "default"

// TestRunnerRunsJobPods runs Job pods through the real kube-controller-manager Job controller.
func TestRunnerRunsJobPods(t *testing.T) {
	cp := controlplane.Start(t, controlplane.Options{ControllerManager: true})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	hostRoot := t.TempDir()
	runner := &Runner{Opts: Options{
		Namespace: ns, Selector: labels.SelectorFromSet(labels.Set{"test-runner": "yes"}), NodeName: "local-runner",
		StateDir: t.TempDir(), HostPathRoot: hostRoot, Programs: map[string]string{"sh": "/bin/sh"}, KillGrace: time.Second,
	}}
	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{Scheme: cp.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	require.NoError(t, err)
	runner.Client = mgr.GetClient()
	require.NoError(t, runner.SetupWithManager(mgr))
	mgrCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	t.Cleanup(func() { stop(); <-done; runner.Stop() })
	c := cp.Client

	require.NoError(t, c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "greeting", Namespace: ns}, Data: map[string]string{"text": "hello"}}))
	require.NoError(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: ns},
		Data: map[string][]byte{".dockerconfigjson": []byte(`{"auths":{}}`)}}))

	t.Run("success with volumes", func(t *testing.T) {
		job := shJob("ok", 0, `cat /in/text > /out/result && test -s /creds/config.json && echo done`, "greeting")
		require.NoError(t, c.Create(ctx, job))
		waitJob(ctx, t, c, job.Name, batchv1.JobComplete)
		got, err := os.ReadFile(filepath.Join(hostRoot, "out", "result"))
		require.NoError(t, err)
		assert.Equal(t, "hello", string(got))
		pod := onlyPod(ctx, t, c, job.Name)
		assert.Equal(t, "local-runner", pod.Spec.NodeName, "bound to the runner's node")
		st := pod.Status.ContainerStatuses[0].State.Terminated
		require.NotNil(t, st)
		assert.Equal(t, int32(0), st.ExitCode)
		log, err := os.ReadFile(runner.LogPath(pod, "main"))
		require.NoError(t, err)
		assert.Equal(t, "done\n", string(log))
	})

	t.Run("failure is retried by the Job, then the Job fails", func(t *testing.T) {
		job := shJob("fail", 1, `echo attempt; echo broken >&2; exit 3`, "greeting")
		require.NoError(t, c.Create(ctx, job))
		waitJob(ctx, t, c, job.Name, batchv1.JobFailed)
		var pods corev1.PodList
		require.NoError(t, c.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"job-name": job.Name}))
		assert.Len(t, pods.Items, 2, "backoffLimit 1: two attempts")
		for _, p := range pods.Items {
			st := p.Status.ContainerStatuses[0].State.Terminated
			require.NotNil(t, st)
			assert.Equal(t, int32(3), st.ExitCode)
			assert.Contains(t, st.Message, "broken", "the log tail is the termination message")
		}
	})

	t.Run("a pod waits for its ConfigMap", func(t *testing.T) {
		job := shJob("wait", 0, `cat /in/text > /out/late`, "late")
		require.NoError(t, c.Create(ctx, job))
		time.Sleep(2 * time.Second)
		pod := onlyPod(ctx, t, c, job.Name)
		assert.NotEqual(t, corev1.PodSucceeded, pod.Status.Phase)
		require.NoError(t, c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "late", Namespace: ns}, Data: map[string]string{"text": "finally"}}))
		waitJob(ctx, t, c, job.Name, batchv1.JobComplete)
	})

	t.Run("deleting the Job stops the process", func(t *testing.T) {
		job := shJob("long", 0, `echo $$ > /out/pid; exec sleep 300`, "greeting")
		require.NoError(t, c.Create(ctx, job))
		var pid int
		require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
			raw, err := os.ReadFile(filepath.Join(hostRoot, "out", "pid"))
			if err != nil || len(strings.TrimSpace(string(raw))) == 0 {
				return false, nil
			}
			_, err = fmtSscan(strings.TrimSpace(string(raw)), &pid)
			return err == nil, nil
		}))
		// The runner writes Running right after starting the process, which may have written its pid first.
		var pod *corev1.Pod
		require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
			pod = onlyPod(ctx, t, c, job.Name)
			return pod.Status.Phase == corev1.PodRunning, nil
		}), "the pod never went Running")
		require.NoError(t, c.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationForeground)))
		require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			err := c.Get(ctx, client.ObjectKeyFromObject(pod), &corev1.Pod{})
			return apierrors.IsNotFound(err), nil
		}), "pod never went away")
		assert.Error(t, syscall.Kill(pid, 0), "process %d still alive", pid)
	})
}

func shJob(name string, backoff int32, script, configMap string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: batchv1.JobSpec{BackoffLimit: ptr.To(backoff), Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"test-runner": "yes"}},
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{
				Name: "main", Image: "unused", Command: []string{"sh", "-c", script},
				TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
				VolumeMounts:             []corev1.VolumeMount{{Name: "in", MountPath: "/in"}, {Name: "out", MountPath: "/out"}, {Name: "creds", MountPath: "/creds"}},
			}},
				Volumes: []corev1.Volume{
					{Name: "in", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: configMap}}}},
					{Name: "out", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/out"}}},
					{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds",
						Items: []corev1.KeyToPath{{Key: ".dockerconfigjson", Path: "config.json"}}}}},
				}},
		}},
	}
}

func waitJob(ctx context.Context, t *testing.T, c client.Client, name string, cond batchv1.JobConditionType) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		j := &batchv1.Job{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, j); err != nil {
			return false, err
		}
		for _, c := range j.Status.Conditions {
			if c.Type == cond && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	require.NoError(t, err, "job %s never got condition %s", name, cond)
}

func onlyPod(ctx context.Context, t *testing.T, c client.Client, job string) *corev1.Pod {
	t.Helper()
	var pods corev1.PodList
	require.NoError(t, c.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"job-name": job}))
	require.Len(t, pods.Items, 1)
	return &pods.Items[0]
}

func fmtSscan(s string, v *int) (int, error) { return fmt.Sscan(s, v) }
