package controlplane

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/imagemode/imagemode/internal/childproc"
)

// nodeRuntimeScript installs containerd and runc and makes the pause and busybox images; it prints the
// directory holding the images.
const nodeRuntimeScript = "hack/setup-node-runtime.sh"

// nodeRuntimeEnv, when set, names that directory and the script is not run.
const nodeRuntimeEnv = "IMAGEMODE_NODE_RUNTIME"

// Images the node has without pulling (see hack/setup-node-runtime.sh).
const (
	// PauseImage is the pod sandbox image.
	PauseImage = "registry.k8s.io/pause:3.10"
	// BusyboxImage is busybox-static with every applet in /bin (entrypoint /bin/sh), for test pods; use it
	// with imagePullPolicy Never.
	BusyboxImage = "localhost/imagemode/busybox:latest"
)

// NodeOptions configures a real node.
type NodeOptions struct {
	// Name is the Node's name; "node-0" when empty.
	Name string
	// Kubeconfig is the credentials file the kubelet (and kube-scheduler) use; tests use an admin one.
	Kubeconfig string
	// KubeletClientCAFile is the CA the kubelet trusts for client certificates: the API server's
	// (ControlPlane.KubeletClientCAFile). Only its holders may read logs or exec through the kubelet.
	KubeletClientCAFile string
	// StateDir holds containerd's root, state and socket, the kubelet's root, the pod logs and every log
	// file; a temporary directory (removed by Stop) when empty. Keep it short: the containerd socket lives in it.
	StateDir string
	// Scheduler also starts a kube-scheduler against Kubeconfig, so that API-created pods are bound.
	Scheduler bool
	// Images are more OCI image-layout tars imported into containerd's k8s.io namespace before the kubelet
	// starts (e.g. the service image, testimages.BuildServiceImage); pods use them with imagePullPolicy
	// IfNotPresent or Never.
	Images []string
	// Output receives the processes' logs in addition to the log files; nil keeps them quiet.
	Output io.Writer
}

// Node is a running containerd + kubelet (+ kube-scheduler) registered as a Ready Node.
type Node struct {
	// Name is the Node's name.
	Name string
	// IP is its InternalIP, the address the kubelet serves on (a non-loopback address of this machine).
	IP string
	// StateDir holds everything it writes.
	StateDir string

	ctr, socket, cgroupRoot string
	containerd, kubelet     *childproc.Process
	scheduler               *childproc.Process
	ownStateDir             bool
}

// StartNode starts containerd (Debian's, under a private root and socket, pods run by runc), imports the
// local pause and busybox images, starts a kubelet under a private cgroup root against opts.Kubeconfig
// (and a kube-scheduler if asked), and waits until its Node is Ready and schedulable. Pods must use
// hostNetwork: the node has no CNI plugins and no kube-proxy. What works on this machine kind and what
// failed is recorded in hack/setup-node-runtime.sh and hack/NODE-RUNTIME.md. Call Stop when done.
func StartNode(ctx context.Context, opts NodeOptions) (*Node, error) {
	if opts.Kubeconfig == "" || opts.KubeletClientCAFile == "" {
		return nil, errors.New("starting node: NodeOptions.Kubeconfig and NodeOptions.KubeletClientCAFile are required")
	}
	assets, err := AssetsDir()
	if err != nil {
		return nil, err
	}
	images, err := NodeRuntimeDir()
	if err != nil {
		return nil, err
	}
	for _, p := range []string{filepath.Join(assets, "kubelet"), filepath.Join(assets, "kube-scheduler"),
		filepath.Join(images, "pause.tar"), filepath.Join(images, "busybox.tar")} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("starting node: %s missing (run %s): %w", p, nodeRuntimeScript, err)
		}
	}
	n := &Node{Name: opts.Name, StateDir: opts.StateDir}
	if n.Name == "" {
		n.Name = "node-0"
	}
	if n.StateDir == "" {
		if n.StateDir, err = os.MkdirTemp("", "imagemode-node-"); err != nil {
			return nil, fmt.Errorf("creating node state directory: %w", err)
		}
		n.ownStateDir = true
	}
	if err := n.start(ctx, opts, assets, images); err != nil {
		return nil, errors.Join(err, n.Stop())
	}
	return n, nil
}

func (n *Node) start(ctx context.Context, opts NodeOptions, assets, images string) error {
	var err error
	if n.IP, err = nodeIP(); err != nil {
		return err
	}
	if n.ctr, err = exec.LookPath("ctr"); err != nil {
		return fmt.Errorf("containerd's ctr not found (run %s): %w", nodeRuntimeScript, err)
	}
	containerd, err := exec.LookPath("containerd")
	if err != nil {
		return fmt.Errorf("containerd not found (run %s): %w", nodeRuntimeScript, err)
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		return fmt.Errorf("runc not found (run %s): %w", nodeRuntimeScript, err)
	}
	n.socket = filepath.Join(n.StateDir, "containerd.sock")
	if len(n.socket) > 100 {
		return fmt.Errorf("node state directory %s is too long for a unix socket path", n.StateDir)
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	n.cgroupRoot = "/imagemode-" + n.Name + "-" + hex.EncodeToString(suffix)
	if err := makeCgroupRoot(n.cgroupRoot); err != nil {
		return err
	}
	for _, d := range []string{"cni/net.d", "cni/bin", "kubelet", "pod-logs", "manifests"} {
		if err := os.MkdirAll(filepath.Join(n.StateDir, d), 0o755); err != nil {
			return fmt.Errorf("creating node state directory: %w", err)
		}
	}
	ports, err := freePorts(n.IP, 2)
	if err != nil {
		return err
	}
	files := map[string]string{
		"containerd.toml":                   containerdConfig(n.StateDir, runc),
		"cni/net.d/10-hostnetwork.conflist": `{"cniVersion":"1.0.0","name":"hostnetwork-only","plugins":[{"type":"loopback"}]}` + "\n",
		"kubelet.yaml":                      kubeletConfig(n, opts.KubeletClientCAFile, ports[0], ports[1]),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(n.StateDir, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("writing node configuration: %w", err)
		}
	}

	if n.containerd, err = childproc.Start(containerd, []string{"--config", filepath.Join(n.StateDir, "containerd.toml")},
		filepath.Join(n.StateDir, "containerd.log"), opts.Output); err != nil {
		return err
	}
	if err := n.waitForContainerd(ctx); err != nil {
		return err
	}
	archives := append([]string{filepath.Join(images, "pause.tar"), filepath.Join(images, "busybox.tar")}, opts.Images...)
	for _, img := range archives {
		if out, err := n.ctrRun(ctx, "images", "import", img); err != nil {
			return fmt.Errorf("importing %s into containerd: %w: %s", img, err, out)
		}
	}
	if n.kubelet, err = childproc.Start(filepath.Join(assets, "kubelet"), []string{
		"--config=" + filepath.Join(n.StateDir, "kubelet.yaml"),
		"--kubeconfig=" + opts.Kubeconfig,
		"--root-dir=" + filepath.Join(n.StateDir, "kubelet"),
		"--hostname-override=" + n.Name,
		"--node-ip=" + n.IP,
	}, filepath.Join(n.StateDir, "kubelet.log"), opts.Output); err != nil {
		return err
	}
	if opts.Scheduler {
		if n.scheduler, err = childproc.Start(filepath.Join(assets, "kube-scheduler"), []string{
			"--kubeconfig=" + opts.Kubeconfig,
			"--authentication-kubeconfig=" + opts.Kubeconfig,
			"--authorization-kubeconfig=" + opts.Kubeconfig,
			"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0",
		}, filepath.Join(n.StateDir, "kube-scheduler.log"), opts.Output); err != nil {
			return err
		}
	}
	return n.waitForReady(ctx, opts.Kubeconfig)
}

// containerdConfig is containerd 1.6's configuration for a private instance under dir. restrict_oom_score_adj
// is what makes pods run here: this machine lacks CAP_SYS_RESOURCE, so runc cannot give the sandbox the
// oom_score_adj of -998 the CRI plugin asks for (see hack/setup-node-runtime.sh).
func containerdConfig(dir, runc string) string {
	q := strconv.Quote
	return `version = 2
root = ` + q(filepath.Join(dir, "containerd", "root")) + `
state = ` + q(filepath.Join(dir, "containerd", "state")) + `
[grpc]
  address = ` + q(filepath.Join(dir, "containerd.sock")) + `
[ttrpc]
  address = ` + q(filepath.Join(dir, "containerd.sock.ttrpc")) + `
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ` + q(PauseImage) + `
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = ` + q(runc) + `
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = ` + q(filepath.Join(dir, "cni", "bin")) + `
    conf_dir = ` + q(filepath.Join(dir, "cni", "net.d")) + `
`
}

// kubeletConfig is the KubeletConfiguration for this machine kind: cgroup v1 must be allowed explicitly,
// cgroupfs (no systemd), swap tolerated, images never garbage-collected (none can be pulled again), and
// only the API server's client certificate may use the kubelet's API.
func kubeletConfig(n *Node, clientCA string, port, healthzPort int) string {
	q := strconv.Quote
	return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: ` + q(n.cgroupRoot) + `
failSwapOn: false
containerRuntimeEndpoint: ` + q("unix://"+n.socket) + `
staticPodPath: ` + q(filepath.Join(n.StateDir, "manifests")) + `
podLogsDir: ` + q(filepath.Join(n.StateDir, "pod-logs")) + `
address: ` + q(n.IP) + `
port: ` + strconv.Itoa(port) + `
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: ` + strconv.Itoa(healthzPort) + `
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: ` + q(clientCA) + `}
authorization: {mode: AlwaysAllow}
`
}

// Ctr runs containerd's ctr against the node's containerd in the kubelet's namespace (k8s.io) and returns
// its combined output, e.g. Ctr(ctx, "tasks", "kill", "--signal", "SIGKILL", id) kills a pod's container
// as the runtime would (the OOM killer, a crash).
func (n *Node) Ctr(ctx context.Context, args ...string) (string, error) {
	return n.ctrRun(ctx, args...)
}

func (n *Node) ctrRun(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, n.ctr, append([]string{"--address", n.socket, "--namespace", "k8s.io"}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (n *Node) waitForContainerd(ctx context.Context) error {
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := exited(n.containerd, "containerd", n.StateDir); err != nil {
			return false, err
		}
		_, err := n.ctrRun(ctx, "version")
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for containerd (log: %s): %w", filepath.Join(n.StateDir, "containerd.log"), err)
	}
	return nil
}

// waitForReady waits until the Node is Ready and carries no not-ready taint (kube-controller-manager's
// node-lifecycle-controller lifts the one the kubelet registers with).
func (n *Node) waitForReady(ctx context.Context, kubeconfig string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("reading kubeconfig %s: %w", kubeconfig, err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating clientset: %w", err)
	}
	var last string
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := exited(n.kubelet, "kubelet", n.StateDir); err != nil {
			return false, err
		}
		node, err := kube.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			last = "not registered"
			return false, nil
		} else if err != nil {
			last = err.Error()
			return false, nil
		}
		last = nodeNotReadyReason(node)
		return last == "", nil
	})
	if err != nil {
		return fmt.Errorf("waiting for node %s to be Ready (%s; log: %s): %w", n.Name, last,
			filepath.Join(n.StateDir, "kubelet.log"), err)
	}
	return nil
}

// nodeNotReadyReason says why pods cannot be scheduled onto node yet, or "" when they can.
func nodeNotReadyReason(node *corev1.Node) string {
	ready := false
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.Status != corev1.ConditionTrue {
				return "Ready " + string(c.Status) + ": " + c.Message
			}
			ready = true
		}
	}
	if !ready {
		return "no Ready condition"
	}
	for _, t := range node.Spec.Taints {
		if t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable {
			return "tainted " + t.Key
		}
	}
	return ""
}

func exited(p *childproc.Process, name, dir string) error {
	select {
	case <-p.Exited():
		return fmt.Errorf("%s exited: %v (log: %s)", name, p.ExitErr(), filepath.Join(dir, name+".log"))
	default:
		return nil
	}
}

// Stop stops kube-scheduler and the kubelet, removes every container containerd runs for the node, stops
// containerd, unmounts what is left under StateDir, removes the node's cgroups and, if StartNode made it,
// StateDir. The Node object stays in the API server.
func (n *Node) Stop() error {
	var errs []error
	for _, p := range []*childproc.Process{n.scheduler, n.kubelet} {
		if p != nil {
			errs = append(errs, p.Stop(10*time.Second))
		}
	}
	n.scheduler, n.kubelet = nil, nil
	if n.containerd != nil {
		errs = append(errs, n.removeContainers())
		errs = append(errs, n.containerd.Stop(10*time.Second))
		n.containerd = nil
	}
	errs = append(errs, unmountUnder(n.StateDir))
	if n.cgroupRoot != "" {
		errs = append(errs, removeCgroupRoot(n.cgroupRoot))
		n.cgroupRoot = ""
	}
	if n.ownStateDir {
		errs = append(errs, os.RemoveAll(n.StateDir))
		n.ownStateDir = false
	}
	return errors.Join(errs...)
}

// removeContainers kills and deletes every task and container in containerd's k8s.io namespace (the
// kubelet leaves pods running when it stops; their shims outlive containerd otherwise).
func (n *Node) removeContainers() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := n.ctrRun(ctx, "containers", "list", "--quiet")
	if err != nil {
		return fmt.Errorf("listing containers: %w: %s", err, out)
	}
	var errs []error
	for _, id := range strings.Fields(out) {
		if out, err := n.ctrRun(ctx, "tasks", "delete", "--force", id); err != nil && !strings.Contains(out, "not found") {
			errs = append(errs, fmt.Errorf("deleting task %s: %w: %s", id, err, out))
		}
		if out, err := n.ctrRun(ctx, "containers", "delete", id); err != nil && !strings.Contains(out, "not found") {
			errs = append(errs, fmt.Errorf("deleting container %s: %w: %s", id, err, out))
		}
	}
	return errors.Join(errs...)
}

// nodeIP is the first non-loopback IPv4 address of an up interface: the kubelet refuses a loopback node IP.
func nodeIP() (string, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return "", fmt.Errorf("listing network interfaces: %w", err)
	}
	for _, iface := range ifaces {
		if iface.Flags&net.FlagUp == 0 || iface.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP.String(), nil
			}
		}
	}
	return "", errors.New("no non-loopback IPv4 address for the node (the kubelet refuses a loopback node IP)")
}

// freePorts returns count TCP ports free on ip now.
func freePorts(ip string, count int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range count {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// NodeRuntimeDir returns the directory holding the node's images: $IMAGEMODE_NODE_RUNTIME when set, else
// what hack/setup-node-runtime.sh prints (it installs containerd and runc and makes the images on first use).
func NodeRuntimeDir() (string, error) {
	if dir := os.Getenv(nodeRuntimeEnv); dir != "" {
		return dir, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(filepath.Join(root, nodeRuntimeScript))
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("running %s: %w", nodeRuntimeScript, err)
	}
	return strings.TrimSpace(string(out)), nil
}
