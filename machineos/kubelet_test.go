package machineos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/daemon/simhost"
	"github.com/imagemode/imagemode/daemon/simnode"
	"github.com/imagemode/imagemode/internal/controlplane"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos"
	"github.com/imagemode/imagemode/machineos/osbuild"
	"github.com/imagemode/imagemode/registry"
	"github.com/imagemode/imagemode/registry/localregistry"
	"github.com/imagemode/imagemode/render/disruption"
	"github.com/imagemode/imagemode/testimages"
)

// kubeletEnv gates the tests on a real kubelet (hack/setup-node-runtime.sh installs what they need).
const kubeletEnv = "IMAGEMODE_KUBELET"

// TestBuildJobOnKubelet runs a MachineOSConfig's build on a real node: kube-scheduler binds the build Job's
// pod to a kubelet, which runs the service image (built here and imported into containerd) with containerd
// and runc, privileged as the Job spec says, under the machine-os-builder ServiceAccount and Role applied
// from manifests/deploy with kubectl: the builder reaches the API server with its token (in-cluster
// configuration) and pushes to the TLS+auth registry. The first pod's container is killed by the runtime
// (SIGKILL through containerd); the Job's next pod builds, the digest is recorded, and the build pod's log
// is read from the kubelet with kubectl logs.
func TestBuildJobOnKubelet(t *testing.T) {
	if os.Getenv(kubeletEnv) != "1" {
		t.Skip("needs a real kubelet, containerd and runc: set " + kubeletEnv + "=1")
	}
	cp := controlplane.Start(t, controlplane.Options{ControllerManager: true, Kubelets: true})
	reg := localregistry.StartForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	t.Cleanup(cancel)

	started := time.Now()
	img, err := testimages.BuildServiceImage(ctx, testimages.ServiceOptions{})
	require.NoError(t, err)
	t.Logf("service image %s (%s) in %s", img.Name, img.ManifestDigest, time.Since(started).Round(time.Millisecond))
	started = time.Now()
	node, err := controlplane.StartNode(ctx, controlplane.NodeOptions{Name: "worker-0", Kubeconfig: cp.KubeconfigPath,
		KubeletClientCAFile: cp.KubeletClientCAFile, Scheduler: true, Images: []string{img.Archive}})
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := node.Stop(); err != nil {
			t.Errorf("stopping node: %v", err)
		}
	})
	t.Logf("node Ready with the service image in %s", time.Since(started).Round(time.Millisecond))

	// As a user installs it (the controller runs in this test's process here, as the admin).
	deploy := filepath.Join("..", "manifests", "deploy")
	out, err := cp.Kubectl(ctx, nil, "apply", "-f", filepath.Join(deploy, "namespace.yaml"),
		"-f", filepath.Join(deploy, "serviceaccounts.yaml"), "-f", filepath.Join(deploy, "builder-rbac.yaml"))
	require.NoError(t, err, out)

	base, err := testimages.Push(ctx, reg.SystemContext(), testimages.Options{}, reg.Ref("openshift/rhcos", ":base"))
	require.NoError(t, err)
	cacheDir := t.TempDir()
	e := &env{cp: cp, reg: reg, c: cp.Client, base: base, opts: envOptions{service: func(o *machineos.Options) {
		o.Jobs.Image = img.Name
		o.Jobs.CacheHostPath = cacheDir // the node is this machine: a hostPath is a directory here
		o.Jobs.HostNetwork = true       // no CNI plugins, no kube-proxy on the test node
	}}}
	e.createClusterObjects(ctx, t, false)
	e.stopControllers = e.startControllers(ctx, t)
	t.Cleanup(func() { e.stopControllers() })

	mosc := docsMOSC(reg.Ref("openshift/os-image", ":latest"),
		"FROM configs AS final\nRUN sleep 3 && dnf install -y cowsay && \\\n  dnf clean all && \\\n  ostree container commit\n"+
			"RUN test \"$(cat /etc/imagemode/role)\" = worker && test -x /usr/bin/cowsay\n")
	require.NoError(t, e.c.Create(ctx, mosc))

	// The first pod: bound by kube-scheduler, run by the kubelet; killed once its container runs.
	first := waitBuildPod(ctx, t, e.c, "", func(p *corev1.Pod) bool { return runningContainerID(p) != "" })
	require.Equal(t, node.Name, first.Spec.NodeName, "kube-scheduler bound the build pod to the node")
	require.NotNil(t, first.Spec.SecurityContext)
	id := runningContainerID(first)
	out, err = node.Ctr(ctx, "tasks", "kill", "--signal", "SIGKILL", id)
	require.NoError(t, err, out)
	t.Logf("killed container %s of pod %s", id, first.Name)

	// The Job's next pod builds; its log streams from the kubelet while it runs.
	second := waitBuildPod(ctx, t, e.c, first.Name, func(p *corev1.Pod) bool { return runningContainerID(p) != "" })
	job := &batchv1.Job{}
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		err := e.c.Get(ctx, types.NamespacedName{Namespace: second.Namespace, Name: second.Labels[batchv1.JobNameLabel]}, job)
		return err == nil && job.Status.Failed == 1, client.IgnoreNotFound(err)
	}), "the Job counts the killed pod as one failed attempt: %+v", job.Status)
	var logs strings.Builder
	var logsErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		cmd := exec.CommandContext(ctx, filepath.Join(mustAssets(t), "kubectl"), "--kubeconfig", cp.KubeconfigPath,
			"logs", "-f", "-n", wellknown.MCONamespace, second.Name, "-c", "image-build")
		cmd.Stdout, cmd.Stderr = &logs, &logs
		logsErr = cmd.Run()
	}()

	built := waitBuild(ctx, t, e.c, osbuild.StateSucceeded)
	wg.Wait()
	require.NoError(t, logsErr, logs.String())
	assert.Contains(t, logs.String(), "dnf install -y cowsay", "kubectl logs -f shows the build's steps")
	assert.Contains(t, logs.String(), "Installed: cowsay", "and the RUN steps' output")

	killed := &corev1.Pod{}
	require.NoError(t, e.c.Get(ctx, types.NamespacedName{Namespace: first.Namespace, Name: first.Name}, killed))
	require.Equal(t, corev1.PodFailed, killed.Status.Phase, "the killed pod failed")
	require.Len(t, killed.Status.ContainerStatuses, 1)
	if term := killed.Status.ContainerStatuses[0].State.Terminated; assert.NotNil(t, term) {
		assert.Equal(t, int32(137), term.ExitCode, "killed by SIGKILL")
	}

	digested := string(built.Status.DigestedImagePushSpec)
	assert.Regexp(t, `^127\.0\.0\.1:\d+/openshift/os-image@sha256:[0-9a-f]{64}$`, digested)
	info, err := registry.Inspect(ctx, reg.SystemContext(), digested)
	require.NoError(t, err)
	assert.Equal(t, "layered-image", info.Labels["machineconfigpool"])
	waitMOSC(ctx, t, e.c, func(m *mcfgv1.MachineOSConfig) bool { return string(m.Status.CurrentImagePullSpec) == digested })
}

// waitBuildPod waits for a build pod other than notName for which ok holds, and returns it.
func waitBuildPod(ctx context.Context, t *testing.T, c client.Client, notName string, ok func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var found *corev1.Pod
	var last []string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 4*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods := &corev1.PodList{}
		if err := c.List(ctx, pods, client.InNamespace(wellknown.MCONamespace), client.HasLabels{wellknown.EphemeralBuildObjectLabel}); err != nil {
			return false, err
		}
		last = last[:0]
		for i := range pods.Items {
			p := &pods.Items[i]
			last = append(last, fmt.Sprintf("%s on %q: %s", p.Name, p.Spec.NodeName, p.Status.Phase))
			if p.Name != notName && ok(p) {
				found = p
				return true, nil
			}
		}
		return false, nil
	})
	require.NoError(t, err, "no build pod as wanted (pods: %v)", last)
	return found
}

// runningContainerID is the containerd ID of the pod's running build container, or "".
func runningContainerID(p *corev1.Pod) string {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == "image-build" && cs.State.Running != nil {
			return strings.TrimPrefix(cs.ContainerID, "containerd://")
		}
	}
	return ""
}

func mustAssets(t *testing.T) string {
	t.Helper()
	dir, err := controlplane.AssetsDir()
	require.NoError(t, err)
	return dir
}

// TestDeployOnKubelets installs the system as a user does, `kubectl apply -k` of manifests/deploy (through an
// overlay for these nodes, nodeOverlay), on two real nodes of this machine, and runs the docs' story:
//   - the controller runs as its Deployment's pod (on master-0, the only node at first) under its own
//     ServiceAccount and RBAC: a missing permission fails the build or the rollout;
//   - the docs' MachineOSConfig's build Job, created by that pod, runs on a node and pushes to the registry;
//   - worker-0 joins later with a simulated host directory (daemon/simhost, provisioned with the base image
//     and its pool's config as an installation would), and the daemon runs on it as the DaemonSet's pod with
//     the directory mounted by hostPath: it drains, pulls the built image, reboots the simulated host into it
//     and reports it, so the docs' cowsay is on the node's root.
func TestDeployOnKubelets(t *testing.T) {
	if os.Getenv(kubeletEnv) != "1" {
		t.Skip("needs a real kubelet, containerd and runc: set " + kubeletEnv + "=1")
	}
	cp := controlplane.Start(t, controlplane.Options{ControllerManager: true, Kubelets: true})
	reg := localregistry.StartForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	t.Cleanup(cancel)
	img, err := testimages.BuildServiceImage(ctx, testimages.ServiceOptions{})
	require.NoError(t, err)
	startNode := func(name string, scheduler bool) *controlplane.Node {
		node, err := controlplane.StartNode(ctx, controlplane.NodeOptions{Name: name, Kubeconfig: cp.KubeconfigPath,
			KubeletClientCAFile: cp.KubeletClientCAFile, Scheduler: scheduler, Images: []string{img.Archive}})
		require.NoError(t, err)
		t.Cleanup(func() {
			if err := node.Stop(); err != nil {
				t.Errorf("stopping node %s: %v", name, err)
			}
		})
		return node
	}
	master := startNode("master-0", true)

	dir := t.TempDir()
	overlay := nodeOverlay(t, dir)
	started := time.Now()
	out, err := cp.Kubectl(ctx, nil, "apply", "--server-side", "-k", overlay)
	require.NoError(t, err, out)
	out, err = cp.Kubectl(ctx, nil, "-n", wellknown.MCONamespace, "rollout", "status", "deployment/imagemode-controller", "--timeout=3m")
	require.NoError(t, err, "%s\n%s", out, describe(ctx, cp))
	t.Logf("controller Deployment available %s after kubectl apply", time.Since(started).Round(time.Millisecond))

	base, err := testimages.Push(ctx, reg.SystemContext(), testimages.Options{}, reg.Ref("openshift/rhcos", ":base"))
	require.NoError(t, err)
	e := &env{cp: cp, reg: reg, c: cp.Client, base: base}
	e.createClusterObjects(ctx, t, false)
	require.NoError(t, e.c.Create(ctx, disruption.NewClusterMachineConfiguration())) // the daemon reads its policies

	// worker-0: a simulated host, installed with the base image and its pool's rendered config, then the
	// node's labels (its pools, and the one that puts the daemon on it) and first-boot annotations.
	started = time.Now()
	worker := startNode("worker-0", false)
	hostDir := filepath.Join(dir, "hosts", worker.Name)
	host, err := simhost.New(hostDir, simhost.Options{})
	require.NoError(t, err)
	ca, err := os.ReadFile(filepath.Join(reg.CertDir, "ca.crt"))
	require.NoError(t, err)
	require.NoError(t, host.Provision(ctx, base, reg.DockerConfigJSON(), map[string][]byte{strings.ReplaceAll(reg.Host, ":", ".."): ca}))
	labels := map[string]string{"node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/layered-image": ""}
	first, err := simnode.FirstBoot(ctx, e.c, host, worker.Name, labels)
	require.NoError(t, err)
	labels[simulatedHostLabel] = ""
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels, "annotations": simnode.FirstBootAnnotations(first)}})
	require.NoError(t, err)
	require.NoError(t, e.c.Patch(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: worker.Name}}, client.RawPatch(types.MergePatchType, patch)))
	out, err = cp.Kubectl(ctx, nil, "-n", wellknown.MCONamespace, "rollout", "status", "daemonset/imagemode-daemon", "--timeout=3m")
	require.NoError(t, err, "%s\n%s", out, describe(ctx, cp))
	t.Logf("worker-0 joined with its daemon in %s", time.Since(started).Round(time.Millisecond))

	require.NoError(t, e.c.Create(ctx, docsMOSC(reg.Ref("openshift/os-image", ":latest"),
		"FROM configs AS final\nRUN dnf install -y cowsay && \\\n  dnf clean all && \\\n  ostree container commit\n")))
	built := waitBuild(ctx, t, e.c, osbuild.StateSucceeded)
	digested := string(built.Status.DigestedImagePushSpec)
	info, err := registry.Inspect(ctx, reg.SystemContext(), digested)
	require.NoError(t, err)
	assert.Equal(t, "layered-image", info.Labels["machineconfigpool"])
	t.Logf("built %s", digested)

	// The rollout: the daemon pod drains, pulls, reboots the simulated host and reports the image.
	var node corev1.Node
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 4*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := e.c.Get(ctx, types.NamespacedName{Name: worker.Name}, &node); err != nil {
			return false, err
		}
		a := node.Annotations
		return a[wellknown.CurrentImageAnnotation] == digested && a[wellknown.StateAnnotation] == wellknown.NodeStateDone && !node.Spec.Unschedulable, nil
	}), "worker-0 never rolled to %s (annotations %v)\n%s", digested, node.Annotations, daemonLogs(ctx, cp))
	_, err = os.Stat(filepath.Join(string(host.Root()), "usr", "bin", "cowsay"))
	assert.NoError(t, err, "the image's cowsay is on the node's root after the reboot")
	t.Logf("worker-0 runs %s", digested)

	pods := &corev1.PodList{}
	require.NoError(t, e.c.List(ctx, pods, client.InNamespace(wellknown.MCONamespace), client.HasLabels{"app.kubernetes.io/name"}))
	for _, p := range pods.Items {
		switch p.Labels["app.kubernetes.io/name"] {
		case "imagemode-controller":
			assert.Equal(t, master.Name, p.Spec.NodeName)
			assert.Equal(t, "imagemode-controller", p.Spec.ServiceAccountName)
		case "imagemode-daemon":
			assert.Equal(t, worker.Name, p.Spec.NodeName, "the daemon runs only where a simulated host is")
			assert.Equal(t, "imagemode-daemon", p.Spec.ServiceAccountName)
		}
		for _, cs := range p.Status.ContainerStatuses {
			assert.Zero(t, cs.RestartCount, "pod %s never restarted (a crash, a failed probe)", p.Name)
		}
		out, err = cp.Kubectl(ctx, nil, "-n", wellknown.MCONamespace, "logs", p.Name)
		require.NoError(t, err, out)
		assert.NotContains(t, out, "forbidden", "no request of pod %s was refused by RBAC", p.Name)
	}
}

// simulatedHostLabel marks the nodes with a simulated host: the overlay puts the daemon only there.
const simulatedHostLabel = "imagemode.test/simulated-host"

func daemonLogs(ctx context.Context, cp *controlplane.ControlPlane) string {
	out, _ := cp.Kubectl(ctx, nil, "-n", wellknown.MCONamespace, "logs", "daemonset/imagemode-daemon", "--tail=40")
	return out
}

// nodeOverlay writes a kustomization into dir over a copy of manifests/{crds,deploy} that fits the test
// nodes: the controller on the host network (no pod network) with a free health port and no metrics
// listener, build pods on the host network with a layer cache under dir, and the daemon only on nodes
// labelled simulatedHostLabel, against the simulated host dir/hosts/<node> (mounted by hostPath at the
// same path, without the manifest's HostToContainer propagation: this machine's / is a private mount, and
// the runtime refuses rslave on it; a simulated host needs none) instead of the node's /. It returns the
// overlay directory.
func nodeOverlay(t *testing.T, dir string) string {
	t.Helper()
	for _, sub := range []string{"crds", "deploy"} {
		require.NoError(t, os.CopyFS(filepath.Join(dir, sub), os.DirFS(filepath.Join("..", "manifests", sub))))
	}
	l, err := net.Listen("tcp", ":0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	cache := filepath.Join(dir, "build-cache")
	overlay := filepath.Join(dir, "node")
	require.NoError(t, os.MkdirAll(overlay, 0o755))
	k := fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ../deploy
patches:
- target: {kind: Deployment, name: imagemode-controller}
  patch: |-
    - {op: add, path: /spec/template/spec/hostNetwork, value: true}
    - {op: replace, path: /spec/template/spec/containers/0/ports/0/containerPort, value: %[1]d}
    - op: replace
      path: /spec/template/spec/containers/0/args
      value:
      - --leader-elect
      - --namespace=openshift-machine-config-operator
      - --builder-image=$(IMAGEMODE_IMAGE)
      - --health-probe-bind-address=:%[1]d
      - --metrics-bind-address=0
      - --build-pods-host-network
      - --build-cache-host-path=%[2]s
- target: {kind: DaemonSet, name: imagemode-daemon}
  patch: |-
    - {op: add, path: /spec/template/spec/nodeSelector/%[4]s, value: ""}
    - {op: replace, path: /spec/template/spec/volumes/0/hostPath/path, value: %[3]s}
    - {op: replace, path: /spec/template/spec/containers/0/volumeMounts/0/mountPath, value: %[3]s}
    - {op: remove, path: /spec/template/spec/containers/0/volumeMounts/0/mountPropagation}
    - op: replace
      path: /spec/template/spec/containers/0/args
      value:
      - --node-name=$(NODE_NAME)
      - --simulated-host=%[3]s/$(NODE_NAME)
`, port, cache, filepath.Join(dir, "hosts"), strings.ReplaceAll(simulatedHostLabel, "/", "~1"))
	require.NoError(t, os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(k), 0o644))
	return overlay
}

// describe is what kubectl says about the namespace's pods, for failure messages.
func describe(ctx context.Context, cp *controlplane.ControlPlane) string {
	out, _ := cp.Kubectl(ctx, nil, "-n", wellknown.MCONamespace, "describe", "pods")
	return out
}
