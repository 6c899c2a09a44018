package controlplane

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
)

func TestParseMountInfo(t *testing.T) {
	t.Parallel()
	text := `22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 22 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
31 22 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
40 22 0:50 / /tmp/node/with\040space rw - tmpfs tmpfs rw
bad line
`
	want := []mountInfo{
		{point: "/", fstype: "ext4"},
		{point: "/sys/fs/cgroup/memory", fstype: "cgroup"},
		{point: "/sys/fs/cgroup/unified", fstype: "cgroup2"},
		{point: "/tmp/node/with space", fstype: "tmpfs"},
	}
	if got := parseMountInfo(text); !slices.Equal(got, want) {
		t.Fatalf("parseMountInfo = %v, want %v", got, want)
	}
	if got := cgroupV1Hierarchies(want); !slices.Equal(got, []string{"/sys/fs/cgroup/memory"}) {
		t.Fatalf("cgroupV1Hierarchies = %v, want only the v1 memory hierarchy", got)
	}
	if got := cgroupHierarchies(want); !slices.Equal(got, []string{"/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified"}) {
		t.Fatalf("cgroupHierarchies = %v, want the v1 memory and the unified hierarchy", got)
	}
}

func TestMountsUnder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mounts []string
		dir    string
		want   []string
	}{
		{name: "none", mounts: []string{"/", "/tmp"}, dir: "/tmp/n", want: nil},
		{name: "deepest first, the dir itself last", dir: "/tmp/n",
			mounts: []string{"/tmp/n", "/tmp/n/a", "/tmp/n/a/b/shm", "/tmp/n/kubelet"},
			want:   []string{"/tmp/n/a/b/shm", "/tmp/n/kubelet", "/tmp/n/a", "/tmp/n"}},
		{name: "a sibling with the same prefix is not under it", dir: "/tmp/n",
			mounts: []string{"/tmp/n2", "/tmp/n/x"}, want: []string{"/tmp/n/x"}},
		{name: "mounted twice, listed once", dir: "/tmp/n",
			mounts: []string{"/tmp/n/x", "/tmp/n/y", "/tmp/n/x"}, want: []string{"/tmp/n/x", "/tmp/n/y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var mounts []mountInfo
			for _, m := range tt.mounts {
				mounts = append(mounts, mountInfo{point: m, fstype: "tmpfs"})
			}
			if got := mountsUnder(mounts, tt.dir); !slices.Equal(got, tt.want) {
				t.Fatalf("mountsUnder = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNodeNotReadyReason(t *testing.T) {
	t.Parallel()
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue}
	tests := []struct {
		name   string
		node   corev1.Node
		reason string
	}{
		{name: "ready and untainted", node: corev1.Node{Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{ready}}}},
		{name: "no conditions yet", reason: "no Ready condition"},
		{name: "not ready", reason: "Ready False: cni plugin not initialized",
			node: corev1.Node{Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
				{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Message: "cni plugin not initialized"}}}}},
		{name: "ready but still tainted not-ready", reason: "tainted node.kubernetes.io/not-ready",
			node: corev1.Node{
				Spec:   corev1.NodeSpec{Taints: []corev1.Taint{{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule}}},
				Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{ready}}}},
		{name: "other taints do not matter", node: corev1.Node{
			Spec:   corev1.NodeSpec{Taints: []corev1.Taint{{Key: "dedicated", Effect: corev1.TaintEffectNoSchedule}}},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{ready}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := nodeNotReadyReason(&tt.node); got != tt.reason {
				t.Fatalf("nodeNotReadyReason = %q, want %q", got, tt.reason)
			}
		})
	}
}

// kubeletEnv gates the tests on a real kubelet until they are part of the default suite.
const kubeletEnv = "IMAGEMODE_KUBELET"

// TestNodeRunsJob runs a Job on a real node: kube-scheduler binds its pod to a kubelet that runs it with
// containerd and runc, the Job controller sees it complete, and its log is read through the API server
// from the kubelet. Stop then leaves no mount and no cgroup behind.
func TestNodeRunsJob(t *testing.T) {
	if os.Getenv(kubeletEnv) != "1" {
		t.Skip("needs a real kubelet, containerd and runc: set " + kubeletEnv + "=1")
	}
	t.Parallel()
	cp := Start(t, Options{ControllerManager: true, Kubelets: true})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	started := time.Now()
	node, err := StartNode(ctx, NodeOptions{Name: "worker-0", Kubeconfig: cp.KubeconfigPath,
		KubeletClientCAFile: cp.KubeletClientCAFile, Scheduler: true})
	if err != nil {
		t.Fatalf("starting node: %v", err)
	}
	t.Logf("node %s (%s) Ready in %s", node.Name, node.IP, time.Since(started).Round(time.Millisecond))
	stateDir, cgroupRoot := node.StateDir, node.cgroupRoot
	stopped := false
	defer func() {
		if !stopped {
			if err := node.Stop(); err != nil {
				t.Errorf("stopping node: %v", err)
			}
		}
	}()

	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: metav1.NamespaceDefault},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](0),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				HostNetwork:   true,
				Containers: []corev1.Container{{
					Name: "hello", Image: BusyboxImage, ImagePullPolicy: corev1.PullNever,
					Command: []string{"/bin/sh", "-c", `echo "hello from $(hostname -s) as $(id -u)"; cat /proc/self/oom_score_adj; ` +
						`test -s /var/run/secrets/kubernetes.io/serviceaccount/token && echo token; echo "https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"`},
				}},
			}},
		},
	}
	jobStarted := time.Now()
	if _, err := cp.Kube.BatchV1().Jobs(job.Namespace).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating job: %v", err)
	}
	var pod corev1.Pod
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		got, err := cp.Kube.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range got.Status.Conditions {
			if c.Status == corev1.ConditionTrue && (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) {
				if c.Type == batchv1.JobFailed {
					return false, fmt.Errorf("job failed: %s: %s", c.Reason, c.Message)
				}
				return true, nil
			}
		}
		return false, nil
	})
	pods, listErr := cp.Kube.CoreV1().Pods(job.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + job.Name})
	if err != nil {
		t.Fatalf("waiting for job %s to complete: %v (pods: %v, %v; kubelet log: %s)", job.Name, err,
			podSummaries(pods), listErr, filepath.Join(stateDir, "kubelet.log"))
	}
	t.Logf("job complete %s after it was created", time.Since(jobStarted).Round(time.Millisecond))
	if listErr != nil || len(pods.Items) != 1 {
		t.Fatalf("pods of job %s: %v, %v; want exactly one", job.Name, podSummaries(pods), listErr)
	}
	pod = pods.Items[0]
	if pod.Spec.NodeName != node.Name || pod.Status.Phase != corev1.PodSucceeded {
		t.Fatalf("pod %s on node %q in phase %s, want %s and Succeeded", pod.Name, pod.Spec.NodeName, pod.Status.Phase, node.Name)
	}
	raw, err := cp.Kube.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{Container: "hello"}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("reading pod %s's log through the API server: %v", pod.Name, err)
	}
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	// the host's name (hostNetwork shares the UTS namespace), root, and the OOM score adjustment clamped
	// to containerd's own (0) by restrict_oom_score_adj: the pod is BestEffort, the kubelet asks for 1000.
	// Then its service account token, and the in-cluster address of the API server, which is where the
	// API server listens (Options.Kubelets).
	if want := "hello from " + host + " as 0\n1000\ntoken\n" + strings.TrimSuffix(cp.Config.Host, "/") + "\n"; string(raw) != want {
		t.Fatalf("pod log = %q, want %q", raw, want)
	}

	if err := node.Stop(); err != nil {
		t.Fatalf("stopping node: %v", err)
	}
	stopped = true
	mounts, err := readMounts()
	if err != nil {
		t.Fatal(err)
	}
	if left := mountsUnder(mounts, stateDir); len(left) > 0 {
		t.Errorf("mounts left under the node's state directory: %v", left)
	}
	for _, h := range cgroupHierarchies(mounts) {
		if _, err := os.Stat(filepath.Join(h, cgroupRoot)); !os.IsNotExist(err) {
			t.Errorf("cgroup %s left behind (stat: %v)", filepath.Join(h, cgroupRoot), err)
		}
	}
	if _, err := os.Stat(stateDir); !os.IsNotExist(err) {
		t.Errorf("state directory %s left behind (stat: %v)", stateDir, err)
	}
}

func podSummaries(pods *corev1.PodList) []string {
	if pods == nil {
		return nil
	}
	var out []string
	for _, p := range pods.Items {
		s := p.Name + " on " + p.Spec.NodeName + " " + string(p.Status.Phase)
		for _, c := range p.Status.Conditions {
			if c.Status != corev1.ConditionTrue && c.Message != "" {
				s += "; " + string(c.Type) + ": " + c.Message
			}
		}
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil {
				s += "; " + cs.Name + " waiting: " + w.Reason + " " + w.Message
			}
		}
		out = append(out, s)
	}
	return out
}
