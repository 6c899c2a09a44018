package simnode_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/daemon"
	"github.com/imagemode/imagemode/daemon/simnode"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/local"
	"github.com/imagemode/imagemode/testimages"
)

// startEnv runs the local environment with the cluster-side controllers: control plane, registry with the
// base OS image, pools, base configs and the render, rollout and drain controllers.
func startEnv(t *testing.T, ctx context.Context) *local.Env {
	t.Helper()
	env, err := local.New(local.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping the environment: %v", err)
		}
	})
	for _, step := range []func(context.Context) error{env.StartControlPlane, env.StartRegistry, env.PushBaseImage,
		env.CreateClusterObjects, env.StartControllers} {
		if err := step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return env
}

func startNode(t *testing.T, ctx context.Context, env *local.Env, name, pool string, wrap func(daemon.Host) daemon.Host) *simnode.Node {
	t.Helper()
	ca, err := os.ReadFile(filepath.Join(env.Registry.CertDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	opts := simnode.Options{
		Name: name, Dir: filepath.Join(t.TempDir(), name),
		Labels:    map[string]string{"node-role.kubernetes.io/" + pool: ""},
		BaseImage: env.BaseImage, AuthJSON: env.Registry.DockerConfigJSON(),
		CAs:      map[string][]byte{strings.Replace(env.Registry.Host, ":", "..", 1): ca},
		WrapHost: wrap,
	}
	if os.Getenv("IMAGEMODE_TEST_LOGS") != "" {
		opts.Logger = ctrl.Log
	}
	n, err := simnode.Start(ctx, env.ControlPlane.Config, env.ControlPlane.Client, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Stop(); err != nil {
			t.Errorf("node %s: %v", name, err)
		}
	})
	return n
}

// waitNode waits until cond holds for the node, failing with the node's annotations if it never does.
func waitNode(t *testing.T, ctx context.Context, c client.Client, n *simnode.Node, what string, cond func(*corev1.Node) bool) *corev1.Node {
	t.Helper()
	node := &corev1.Node{}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := n.Err(); err != nil {
			return false, err
		}
		if err := c.Get(ctx, client.ObjectKey{Name: n.Name()}, node); err != nil {
			return false, err
		}
		return cond(node), nil
	})
	if err != nil {
		t.Fatalf("node %s: waiting for %s: %v\nannotations: %v", n.Name(), what, err, node.Annotations)
	}
	return node
}

// poolTarget returns the rendered config the pool targets once it differs from not.
func poolTarget(t *testing.T, ctx context.Context, c client.Client, pool, not string) string {
	t.Helper()
	p := &mcfgv1.MachineConfigPool{}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Name: pool}, p); err != nil {
			return false, err
		}
		return p.Spec.Configuration.Name != "" && p.Spec.Configuration.Name != not, nil
	})
	if err != nil {
		t.Fatalf("pool %s never moved off %q: %v", pool, not, err)
	}
	return p.Spec.Configuration.Name
}

func doneOn(config string) func(*corev1.Node) bool {
	return func(n *corev1.Node) bool {
		a := n.Annotations
		drain := a[wellknown.DesiredDrainAnnotation]
		return a[wellknown.CurrentConfigAnnotation] == config && a[wellknown.StateAnnotation] == wellknown.NodeStateDone &&
			(drain == "" || drain == a[wellknown.LastAppliedDrainAnnotation])
	}
}

func workerConfig(name string, spec mcfgv1.MachineConfigSpec) *mcfgv1.MachineConfig {
	return &mcfgv1.MachineConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{wellknown.RoleLabel: "worker"}},
		Spec:       spec,
	}
}

func fileConfig(name, path, content string) *mcfgv1.MachineConfig {
	ign := fmt.Sprintf(`{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":%q,"mode":420,"contents":{"source":"data:,%s"}}]}}`, path, content)
	return workerConfig(name, mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: []byte(ign)}})
}

func readHostFile(t *testing.T, n *simnode.Node, p string) string {
	t.Helper()
	data, err := os.ReadFile(n.Host.Root().HostPath(p))
	if err != nil {
		t.Fatalf("node %s: %v", n.Name(), err)
	}
	return string(data)
}

// TestNodeAgent drives a simulated worker through the daemon's paths on the real parts: first
// configuration, a rebootless files-only change (policy None), a kernel argument change with a reboot, an OS
// image change pulled from the registry and booted, drift detected and cleared, and a daemon killed between
// writing an update and rebooting.
func TestNodeAgent(t *testing.T) {
	t.Parallel() // its own control plane
	if testing.Short() {
		t.Skip("integration test (skipped with -short)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	env := startEnv(t, ctx)
	c := env.ControlPlane.Client

	// A fault injector: while armed, the daemon "dies" when it is about to reboot. It records the file the
	// update wrote as it was then (inode and modification time), to tell whether it is written again.
	const kargsFile = "/etc/imagemode/kargs-note"
	var killBeforeReboot atomic.Bool
	var atKill os.FileInfo
	var node *simnode.Node
	var entriesAtKill []sysrootEntry
	var bootedAtKill string
	wrap := func(h daemon.Host) daemon.Host {
		return &faultyHost{Host: h, beforeReboot: func() error {
			if killBeforeReboot.CompareAndSwap(true, false) {
				atKill, _ = os.Stat(h.Root().HostPath(kargsFile))
				if node.Host.Sysroot() != "" {
					entriesAtKill, bootedAtKill = bootEntries(t, node), bootedDeployment(node)
				}
				node.RestartDaemon()
				return errors.New("killed before the reboot")
			}
			return nil
		}}
	}
	node = startNode(t, ctx, env, "worker-0", "worker", wrap)

	// First configuration: the node takes the worker pool's config, without a reboot (same OS).
	cfg1 := poolTarget(t, ctx, c, "worker", "")
	waitNode(t, ctx, c, node, "the first config", doneOn(cfg1))
	if got := readHostFile(t, node, "/etc/imagemode/role"); got != "worker\n" {
		t.Errorf("/etc/imagemode/role = %q", got)
	}
	if node.Reboots() != 0 {
		t.Errorf("%d reboots for the first config on the same OS, want 0", node.Reboots())
	}

	// A files-only change under a path whose disruption policy is None: no reboot, no drain.
	if err := c.Create(ctx, fileConfig("50-worker-nmstate", "/etc/nmstate/openshift/demo.yml", "hello%0A")); err != nil {
		t.Fatal(err)
	}
	cfg2 := poolTarget(t, ctx, c, "worker", cfg1)
	n := waitNode(t, ctx, c, node, "the files-only config", doneOn(cfg2))
	if got := readHostFile(t, node, "/etc/nmstate/openshift/demo.yml"); got != "hello\n" {
		t.Errorf("demo.yml = %q", got)
	}
	if node.Reboots() != 0 || strings.HasPrefix(n.Annotations[wellknown.DesiredDrainAnnotation], "drain-"+cfg2) {
		t.Errorf("files-only change: %d reboots, desiredDrain %q; want none", node.Reboots(), n.Annotations[wellknown.DesiredDrainAnnotation])
	}

	// Drift: a hand edit of a managed file degrades the node, naming the file; fixing it clears it.
	demo := node.Host.Root().HostPath("/etc/nmstate/openshift/demo.yml")
	if err := os.WriteFile(demo, []byte("edited by hand\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n = waitNode(t, ctx, c, node, "drift reported", func(n *corev1.Node) bool {
		return n.Annotations[wellknown.StateAnnotation] == wellknown.NodeStateDegraded
	})
	if !strings.Contains(n.Annotations[wellknown.ReasonAnnotation], "/etc/nmstate/openshift/demo.yml") {
		t.Errorf("drift reason %q does not name the file", n.Annotations[wellknown.ReasonAnnotation])
	}
	if err := os.WriteFile(demo, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitNode(t, ctx, c, node, "drift cleared", doneOn(cfg2))

	// A kernel argument change with a file reboots the node (after a drain) and the new boot has the
	// argument; the daemon is killed once between writing the update and queueing the reboot (issue 14,
	// fault row 9), and converges on restart with exactly one reboot, without writing the file or changing
	// the kernel arguments a second time.
	killBeforeReboot.Store(true)
	kargsCalls := countHostCalls(node, "rpm-ostree kargs")
	if err := c.Create(ctx, workerConfig("60-worker-kargs", mcfgv1.MachineConfigSpec{KernelArguments: []string{"imagemode.test=1"},
		Config: runtime.RawExtension{Raw: []byte(`{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"` + kargsFile + `","mode":420,"contents":{"source":"data:,kargs%0A"}}]}}`)}})); err != nil {
		t.Fatal(err)
	}
	cfg3 := poolTarget(t, ctx, c, "worker", cfg2)
	waitNode(t, ctx, c, node, "the kargs config", doneOn(cfg3))
	if killBeforeReboot.Load() {
		t.Error("the daemon was never about to reboot")
	}
	if node.Reboots() != 1 {
		t.Errorf("%d reboots for the kargs change, want 1", node.Reboots())
	}
	if got := countHostCalls(node, "rpm-ostree kargs") - kargsCalls; got != 1 {
		t.Errorf("kernel arguments changed %d times for one update, want 1", got)
	}
	after, err := os.Stat(node.Host.Root().HostPath(kargsFile))
	switch {
	case atKill == nil || err != nil:
		t.Errorf("%s not written before the reboot (%v)", kargsFile, err)
	case !atKill.ModTime().Equal(after.ModTime()):
		// Not the inode: on an OSTree host the reboot's /etc merge copies the file into the new deployment
		// (keeping its modification time).
		t.Errorf("%s written again after the restart (mtime changed: %v → %v)", kargsFile, atKill.ModTime(), after.ModTime())
	}
	if got := readHostFile(t, node, kargsFile); got != "kargs\n" {
		t.Errorf("%s = %q", kargsFile, got)
	}
	kargs, err := node.Host.OS().KernelArgs(ctx)
	if err != nil || !slices.Contains(kargs, "imagemode.test=1") {
		t.Errorf("kernel args %v (%v), want imagemode.test=1", kargs, err)
	}
	if ostreeNode(t, node) {
		// Killed between the deploy and the reboot, the sysroot could boot either deployment: the booted
		// one (still the default entry) and the new one with the argument.
		if len(entriesAtKill) != 2 || entriesAtKill[0].Deployment != bootedAtKill || hasKarg(entriesAtKill[0], "imagemode.test=1") ||
			!hasKarg(entriesAtKill[1], "imagemode.test=1") || checksumOf(entriesAtKill[1].Deployment) != checksumOf(bootedAtKill) {
			t.Errorf("boot entries when the daemon was killed: %+v (booted %s)", entriesAtKill, bootedAtKill)
		}
		// After the reboot: the new boot's entry has it, the previous deployment is kept for rollback without.
		entries := bootEntries(t, node)
		if len(entries) != 2 || entries[0].Deployment != bootedDeployment(node) || !hasKarg(entries[0], "imagemode.test=1") ||
			entries[1].Deployment != bootedAtKill || hasKarg(entries[1], "imagemode.test=1") {
			t.Errorf("boot entries after the kargs change: %+v (booted %s, before %s)", entries, bootedDeployment(node), bootedAtKill)
		}
	}

	// An OS image change: the node pulls the new image from the registry with its pull secret and boots it.
	newOS, err := testimages.Push(ctx, env.Registry.SystemContext(), testimages.Options{Version: "9.6.20260101-1"},
		env.Registry.Ref(local.BaseImageRepository, ":next"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, workerConfig("70-worker-os", mcfgv1.MachineConfigSpec{OSImageURL: newOS})); err != nil {
		t.Fatal(err)
	}
	cfg4 := poolTarget(t, ctx, c, "worker", cfg3)
	waitNode(t, ctx, c, node, "the new OS image", doneOn(cfg4))
	st, err := node.Host.OS().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(newOS, st.BootedImageDigest()) {
		t.Errorf("booted %s, want %s", st.BootedImage(), newOS)
	}
	if node.Reboots() != 2 {
		t.Errorf("%d reboots after the OS change, want 2", node.Reboots())
	}
	if got := readHostFile(t, node, "/usr/lib/os-release"); !strings.Contains(got, "9.6.20260101-1") {
		t.Errorf("os-release after the OS change:\n%s", got)
	}
	// The config's files survive the OS switch (on OSTree, by ostree's /etc merge into the new deployment).
	if got := readHostFile(t, node, "/etc/nmstate/openshift/demo.yml"); got != "hello\n" {
		t.Errorf("demo.yml after the OS change = %q", got)
	}
	if ostreeNode(t, node) {
		entries := bootEntries(t, node)
		if len(entries) != 2 || entries[0].Deployment != bootedDeployment(node) || !hasKarg(entries[0], "imagemode.test=1") ||
			!strings.Contains(originOf(t, node, entries[0].Deployment), newOS) {
			t.Errorf("boot entries after the OS change: %+v (booted %s)", entries, bootedDeployment(node))
		}
	}
}

// countHostCalls counts the host commands that start with prefix.
func countHostCalls(n *simnode.Node, prefix string) int {
	k := 0
	for _, c := range n.Host.Calls() {
		if strings.HasPrefix(c, prefix) {
			k++
		}
	}
	return k
}

// faultyHost wraps a host so a test can fail the reboot.
type faultyHost struct {
	daemon.Host
	beforeReboot func() error
}

func (h *faultyHost) Systemd() daemon.Systemd {
	return &faultySystemd{Systemd: h.Host.Systemd(), beforeReboot: h.beforeReboot}
}

type faultySystemd struct {
	daemon.Systemd
	beforeReboot func() error
}

func (s *faultySystemd) Reboot(ctx context.Context, reason string) error {
	if err := s.beforeReboot(); err != nil {
		return err
	}
	return s.Systemd.Reboot(ctx, reason)
}
