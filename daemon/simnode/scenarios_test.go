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

	configv1 "github.com/openshift/api/config/v1"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/imagemode/imagemode/daemon"
	"github.com/imagemode/imagemode/daemon/simnode"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/local"
	"github.com/imagemode/imagemode/render"
)

// nodeSpec describes a simulated node of a scenario.
type nodeSpec struct {
	name   string
	pools  []string
	wrap   func(daemon.Host) daemon.Host
	reg    prometheus.Registerer
	delete bool   // delete the Node object when the test ends (so that no pool waits for a stopped node)
	dir    string // the host's directory (default: under t.TempDir())
}

func startNodeSpec(t *testing.T, ctx context.Context, env *local.Env, s nodeSpec) *simnode.Node {
	t.Helper()
	ca, err := os.ReadFile(filepath.Join(env.Registry.CertDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{}
	for _, p := range s.pools {
		labels[local.NodeRoleLabelPrefix+p] = ""
	}
	dir := s.dir
	if dir == "" {
		dir = filepath.Join(t.TempDir(), s.name)
	}
	opts := simnode.Options{
		Name: s.name, Dir: dir, Labels: labels,
		BaseImage: env.BaseImage, AuthJSON: env.Registry.DockerConfigJSON(),
		CAs:      map[string][]byte{strings.Replace(env.Registry.Host, ":", "..", 1): ca},
		WrapHost: s.wrap, Registry: s.reg,
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
			t.Errorf("node %s: %v", s.name, err)
		}
		if s.delete {
			_ = env.ControlPlane.Client.Delete(context.Background(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: s.name}})
		}
	})
	return n
}

// ownPool creates a pool that selects only configs of its own role (so that no other scenario's config
// reaches it) and its base config.
func ownPool(t *testing.T, ctx context.Context, c client.Client, name string) {
	t.Helper()
	base := roleConfig("00-"+name, name, `{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/imagemode/pool","mode":420,"contents":{"source":"data:,`+name+`%0A"}}]}}`)
	for _, obj := range []client.Object{local.Pool(name), base} {
		if err := c.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
}

func roleConfig(name, role, ign string) *mcfgv1.MachineConfig {
	return &mcfgv1.MachineConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{wellknown.RoleLabel: role}},
		Spec:       mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: []byte(ign)}},
	}
}

// filesIgn is an Ignition config with the given files (path → content) and units.
func filesIgn(files map[string]string, units string) string {
	var fs []string
	for _, p := range slices.Sorted(mapsKeys(files)) {
		fs = append(fs, fmt.Sprintf(`{"path":%q,"mode":420,"contents":{"source":"data:,%s"}}`, p, strings.ReplaceAll(files[p], "\n", "%0A")))
	}
	ign := `{"ignition":{"version":"3.4.0"},"storage":{"files":[` + strings.Join(fs, ",") + `]}`
	if units != "" {
		ign += `,"systemd":{"units":[` + units + `]}`
	}
	return ign + "}"
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func setAnnotations(t *testing.T, ctx context.Context, c client.Client, name string, an map[string]string) {
	t.Helper()
	node := &corev1.Node{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, node); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(node.DeepCopy())
	for k, v := range an {
		node.Annotations[k] = v
	}
	if err := c.Patch(ctx, node, patch); err != nil {
		t.Fatal(err)
	}
}

func hostFile(n *simnode.Node, p string) string {
	data, err := os.ReadFile(n.Host.Root().HostPath(p))
	if err != nil {
		return "<absent>"
	}
	return string(data)
}

func stateIs(state string) func(*corev1.Node) bool {
	return func(n *corev1.Node) bool { return n.Annotations[wellknown.StateAnnotation] == state }
}

// TestAgentScenarios runs the daemon's remaining paths against one environment (control plane, registry,
// render/rollout/drain controllers), one simulated node per scenario, in pools that keep the scenarios
// apart: the agent's refusals and recoveries (failed write, unreconcilable config, unmanaged path, force
// file, a full disk), the drain handshake with a retarget while waiting, MachineConfigNode conditions and mcd_* metrics,
// registries.conf changes (Special), the layered pool (image, layer-only change, leaving it), and a classic
// pool's kernel type and extensions.
func TestAgentScenarios(t *testing.T) {
	t.Parallel() // its own control plane
	if testing.Short() {
		t.Skip("integration test (skipped with -short)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	env := startRenderEnv(t, ctx)
	for _, sc := range []struct {
		name string
		run  func(*testing.T, context.Context, *local.Env)
	}{
		{"Faults", testFaults},
		{"RebaseFault", testRebaseFault},
		{"DiskFull", testDiskFull},
		{"EtcdRestart", testEtcdRestart},
		{"DrainHandshake", testDrainHandshake},
		{"RegistriesSpecial", testRegistriesSpecial},
		{"LayeredPool", testLayeredPool},
		{"KernelExtensions", testKernelExtensions},
	} {
		if !t.Run(sc.name, func(t *testing.T) { sc.run(t, ctx, env) }) {
			return
		}
	}
}

// startRenderEnv is startEnv without the build service: the render, registries, rollout and drain
// controllers only (render.AddToManager), so that a test can publish MachineOSBuilds of its own.
func startRenderEnv(t *testing.T, ctx context.Context) *local.Env {
	t.Helper()
	env, _ := startRestartableRenderEnv(t, ctx)
	return env
}

// startRestartableRenderEnv is startRenderEnv that also returns restart, which stops the controllers and
// starts them again in a new manager (a controller restart: nothing is kept in memory).
func startRestartableRenderEnv(t *testing.T, ctx context.Context) (*local.Env, func()) {
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
	for _, step := range []func(context.Context) error{env.StartControlPlane, env.StartRegistry, env.PushBaseImage, env.CreateClusterObjects} {
		if err := step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var stop func()
	start := func() {
		mgr, err := ctrl.NewManager(env.ControlPlane.Config, ctrl.Options{Scheme: env.ControlPlane.Scheme,
			Metrics: metricsserver.Options{BindAddress: "0"}, Controller: config.Controller{SkipNameValidation: new(true)}})
		if err != nil {
			t.Fatal(err)
		}
		if err := render.AddToManager(mgr, render.Options{Version: "test"}); err != nil {
			t.Fatal(err)
		}
		mgrCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan error, 1)
		go func() { done <- mgr.Start(mgrCtx) }()
		stop = func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("controllers: %v", err)
			}
		}
	}
	start()
	t.Cleanup(func() { stop() })
	return env, func() { stop(); start() }
}

// testFaults drives a node that belongs to no pool (its pool is deleted after its first boot) by setting
// its desiredConfig by hand to configs the render would never produce.
func testFaults(t *testing.T, ctx context.Context, env *local.Env) {
	c := env.ControlPlane.Client
	ownPool(t, ctx, c, "faults")
	var failEnable atomic.Bool
	wrap := func(h daemon.Host) daemon.Host {
		return &enableFaultHost{Host: h, fail: &failEnable}
	}
	node := startNodeSpec(t, ctx, env, nodeSpec{name: "faults-0", pools: []string{"faults"}, wrap: wrap, delete: true})
	first := poolTarget(t, ctx, c, "faults", "")
	waitNode(t, ctx, c, node, "the first config", doneOn(first))
	if err := c.Delete(ctx, local.Pool("faults")); err != nil {
		t.Fatal(err)
	}

	create := func(name, ign string, mutate ...func(*mcfgv1.MachineConfig)) {
		t.Helper()
		mc := &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: []byte(ign)}}}
		for _, m := range mutate {
			m(mc)
		}
		if err := c.Create(ctx, mc); err != nil {
			t.Fatal(err)
		}
	}
	target := func(name string) {
		t.Helper()
		setAnnotations(t, ctx, c, node.Name(), map[string]string{wellknown.DesiredConfigAnnotation: name})
	}
	const a, b = "/etc/nmstate/openshift/a.yml", "/etc/nmstate/openshift/b.yml"
	unit := `{"name":"imagemode-fault.service","enabled":true,"contents":"[Unit]\nDescription=test\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"}`
	create("rendered-faults-0", filesIgn(map[string]string{a: "zero\n"}, ""))
	create("rendered-faults-1", filesIgn(map[string]string{a: "one\n", b: "new\n"}, unit))
	create("rendered-faults-2", filesIgn(map[string]string{a: "one\n", b: "new\n"}, unit), func(mc *mcfgv1.MachineConfig) { mc.Spec.FIPS = true })
	create("rendered-faults-3", filesIgn(map[string]string{a: "three\n", b: "new\n", "/usr/bin/evil": "x\n"}, unit))
	create("rendered-faults-4", filesIgn(map[string]string{a: "four\n", b: "new\n", "/etc/../../../tmp/escape": "x\n"}, unit))

	target("rendered-faults-0")
	waitNode(t, ctx, c, node, "rendered-faults-0", doneOn("rendered-faults-0"))

	// A write that fails mid-way (enabling the unit) puts the previous files back and degrades the node.
	failEnable.Store(true)
	target("rendered-faults-1")
	n := waitNode(t, ctx, c, node, "the failed write reported", stateIs(wellknown.NodeStateDegraded))
	if r := n.Annotations[wellknown.ReasonAnnotation]; !strings.Contains(r, "enable") {
		t.Errorf("reason %q does not name the failed enable", r)
	}
	// The agent retries with back-off (each try writes, fails and rolls back): the previous files must be
	// what the host holds between tries.
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return hostFile(node, a) == "zero\n" && hostFile(node, b) == "<absent>", nil
	})
	if err != nil {
		t.Errorf("after the failed write %s = %q, %s = %q; want the previous files (zero, absent)", a, hostFile(node, a), b, hostFile(node, b))
	}
	// Once enabling works the retry converges (the unit change reboots the node).
	failEnable.Store(false)
	waitNode(t, ctx, c, node, "rendered-faults-1", doneOn("rendered-faults-1"))
	if got := hostFile(node, a); got != "one\n" {
		t.Errorf("%s = %q after the retry", a, got)
	}
	reboots := node.Reboots()

	// An unreconcilable config (FIPS switched on): Unreconcilable with the field, and not retried.
	target("rendered-faults-2")
	n = waitNode(t, ctx, c, node, "Unreconcilable", stateIs(wellknown.NodeStateUnreconcilable))
	if r := n.Annotations[wellknown.ReasonAnnotation]; !strings.Contains(r, "spec.fips") {
		t.Errorf("unreconcilable reason %q does not name spec.fips", r)
	}
	rv := n.ResourceVersion
	time.Sleep(2 * time.Second)
	if err := c.Get(ctx, client.ObjectKey{Name: node.Name()}, n); err != nil {
		t.Fatal(err)
	}
	if n.ResourceVersion != rv || n.Annotations[wellknown.StateAnnotation] != wellknown.NodeStateUnreconcilable {
		t.Errorf("the node changed while Unreconcilable (retried?): %v", n.Annotations)
	}
	if node.Reboots() != reboots || hostFile(node, a) != "one\n" {
		t.Errorf("the unreconcilable config touched the host: %d reboots, %s = %q", node.Reboots(), a, hostFile(node, a))
	}

	// Paths configs may not manage (/usr outside /usr/local), also through "..": refused, with the path, before any write.
	for cfg, bad := range map[string]string{"rendered-faults-3": "/usr/bin/evil", "rendered-faults-4": "/tmp/escape"} {
		target(cfg)
		n = waitNode(t, ctx, c, node, "the path refused", func(n *corev1.Node) bool {
			return n.Annotations[wellknown.StateAnnotation] == wellknown.NodeStateDegraded &&
				strings.Contains(n.Annotations[wellknown.ReasonAnnotation], bad)
		})
		if got := hostFile(node, a); got != "one\n" {
			t.Errorf("%s: %s = %q, want nothing written", cfg, a, got)
		}
		if hostFile(node, bad) != "<absent>" {
			t.Errorf("%s: %s written", cfg, bad)
		}
	}
	target("rendered-faults-1")
	waitNode(t, ctx, c, node, "back on rendered-faults-1", doneOn("rendered-faults-1"))

	// The force file: a hand edit is not reported as drift but overwritten, units are written and enabled
	// again without asking, the node reboots and the file is removed.
	enables := countCalls(node, "systemctl enable imagemode-fault.service")
	reboots = node.Reboots()
	force := node.Host.Root().HostPath(wellknown.ForceFile)
	if err := os.MkdirAll(filepath.Dir(force), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(force, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(node.Host.Root().HostPath(a), []byte("edited by hand\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Name: node.Name()}, n); err != nil {
			return false, err
		}
		if n.Annotations[wellknown.StateAnnotation] == wellknown.NodeStateDegraded {
			return false, fmt.Errorf("degraded despite the force file: %s", n.Annotations[wellknown.ReasonAnnotation])
		}
		_, statErr := os.Stat(force)
		return node.Reboots() > reboots && errors.Is(statErr, os.ErrNotExist) && doneOn("rendered-faults-1")(n), nil
	})
	if err != nil {
		t.Fatalf("forced update: %v (%d reboots)", err, node.Reboots())
	}
	if got := hostFile(node, a); got != "one\n" {
		t.Errorf("after the forced update %s = %q", a, got)
	}
	if node.Reboots() != reboots+1 {
		t.Errorf("%d reboots for the forced update, want 1", node.Reboots()-reboots)
	}
	if got := countCalls(node, "systemctl enable imagemode-fault.service"); got <= enables {
		t.Errorf("the forced update did not enable the unit again (%d calls before, %d after)", enables, got)
	}
}

func countCalls(n *simnode.Node, call string) int {
	k := 0
	for _, c := range n.Host.Calls() {
		if c == call {
			k++
		}
	}
	return k
}

// enableFaultHost fails systemctl enable while fail is set.
type enableFaultHost struct {
	daemon.Host
	fail *atomic.Bool
}

func (h *enableFaultHost) Systemd() daemon.Systemd {
	return &enableFaultSystemd{Systemd: h.Host.Systemd(), fail: h.fail}
}

type enableFaultSystemd struct {
	daemon.Systemd
	fail *atomic.Bool
}

func (s *enableFaultSystemd) Enable(ctx context.Context, units ...string) error {
	if s.fail.Load() {
		return fmt.Errorf("systemctl enable %s: injected failure", strings.Join(units, " "))
	}
	return s.Systemd.Enable(ctx, units...)
}

// testDrainHandshake: a change that needs a drain waits for it without blocking the agent (a second config
// arriving meanwhile is taken instead), proceeds once the drain controller reports it, and uncordons; the
// node's MachineConfigNode and metrics tell the story.
func testDrainHandshake(t *testing.T, ctx context.Context, env *local.Env) {
	c := env.ControlPlane.Client
	ownPool(t, ctx, c, "drainpool")
	reg := prometheus.NewRegistry()
	node := startNodeSpec(t, ctx, env, nodeSpec{name: "drain-0", pools: []string{"drainpool"}, reg: reg, delete: true})
	cfg1 := poolTarget(t, ctx, c, "drainpool", "")
	waitNode(t, ctx, c, node, "the first config", doneOn(cfg1))

	// A pod the budget protects keeps the drain from finishing.
	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "drain-owner", Namespace: metav1.NamespaceDefault}}
	if err := c.Create(ctx, owner); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "protected", Namespace: metav1.NamespaceDefault, Labels: map[string]string{"app": "protected"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID, Controller: new(true)}}},
		Spec: corev1.PodSpec{NodeName: node.Name(), TerminationGracePeriodSeconds: new(int64(0)),
			Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
	}
	if err := c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
	if err := c.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "protected", Namespace: metav1.NamespaceDefault},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: new(intstr.FromInt32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "protected"}}}}
	if err := c.Create(ctx, pdb); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		err := c.Get(ctx, client.ObjectKeyFromObject(pdb), pdb)
		return err == nil && pdb.Status.CurrentHealthy == 1 && pdb.Status.ObservedGeneration == pdb.Generation, nil
	})
	if err != nil {
		t.Fatalf("budget status: %v", err)
	}

	// A file with no policy: reboot, hence drain.
	if err := c.Create(ctx, roleConfig("50-drainpool-a", "drainpool", filesIgn(map[string]string{"/etc/imagemode/drain-a": "a\n"}, ""))); err != nil {
		t.Fatal(err)
	}
	cfg2 := poolTarget(t, ctx, c, "drainpool", cfg1)
	waitNode(t, ctx, c, node, "the drain request for "+cfg2, func(n *corev1.Node) bool {
		return n.Annotations[wellknown.DesiredDrainAnnotation] == "drain-"+cfg2 && n.Spec.Unschedulable
	})
	// While the drain waits, a second change arrives: the agent asks for a drain for it instead. (The
	// rollout moves no node while one is updating, as the reference's; the new target is set by hand.)
	if err := c.Create(ctx, roleConfig("51-drainpool-b", "drainpool", filesIgn(map[string]string{"/etc/imagemode/drain-b": "b\n"}, ""))); err != nil {
		t.Fatal(err)
	}
	cfg3 := poolTarget(t, ctx, c, "drainpool", cfg2)
	setAnnotations(t, ctx, c, node.Name(), map[string]string{wellknown.DesiredConfigAnnotation: cfg3})
	n := waitNode(t, ctx, c, node, "the drain request for "+cfg3, func(n *corev1.Node) bool {
		return n.Annotations[wellknown.DesiredDrainAnnotation] == "drain-"+cfg3
	})
	if n.Annotations[wellknown.CurrentConfigAnnotation] != cfg1 || hostFile(node, "/etc/imagemode/drain-a") != "<absent>" {
		t.Errorf("the update went ahead before the drain: currentConfig %s", n.Annotations[wellknown.CurrentConfigAnnotation])
	}
	// The budget goes: the drain completes, the update proceeds straight to the latest config, uncordon.
	if err := c.Delete(ctx, pdb); err != nil {
		t.Fatal(err)
	}
	n = waitNode(t, ctx, c, node, "done on "+cfg3, func(n *corev1.Node) bool {
		return doneOn(cfg3)(n) && n.Annotations[wellknown.DesiredDrainAnnotation] == "uncordon-"+cfg3
	})
	if n.Spec.Unschedulable {
		t.Error("node still cordoned after the update")
	}
	if node.Reboots() != 1 {
		t.Errorf("%d reboots, want 1 (one update to the latest config)", node.Reboots())
	}
	for p, want := range map[string]string{"/etc/imagemode/drain-a": "a\n", "/etc/imagemode/drain-b": "b\n"} {
		if got := hostFile(node, p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(pod), pod); !apierrors.IsNotFound(err) {
		t.Errorf("the protected pod was not evicted: %v", err)
	}

	// The MachineConfigNode tells the update's story.
	mcn := &mcfgv1.MachineConfigNode{}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Name: node.Name()}, mcn); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		return meta.IsStatusConditionTrue(mcn.Status.Conditions, string(mcfgv1.MachineConfigNodeUpdated)), nil
	})
	if err != nil {
		t.Fatalf("MachineConfigNode %s never Updated: %v\n%+v", node.Name(), err, mcn.Status)
	}
	for typ, want := range map[mcfgv1.StateProgress]metav1.ConditionStatus{
		mcfgv1.MachineConfigNodeUpdatePrepared:   metav1.ConditionTrue,
		mcfgv1.MachineConfigNodeUpdateExecuted:   metav1.ConditionTrue,
		mcfgv1.MachineConfigNodeUpdateFilesAndOS: metav1.ConditionTrue,
		mcfgv1.MachineConfigNodeUpdateDrained:    metav1.ConditionTrue,
		mcfgv1.MachineConfigNodeUpdateRebooted:   metav1.ConditionTrue,
		mcfgv1.MachineConfigNodeUpdated:          metav1.ConditionTrue,
		mcfgv1.MachineConfigNodeNodeDegraded:     metav1.ConditionFalse,
	} {
		cond := meta.FindStatusCondition(mcn.Status.Conditions, string(typ))
		if cond == nil || cond.Status != want {
			t.Errorf("MachineConfigNode condition %s = %+v, want %s", typ, cond, want)
		}
	}
	if v := mcn.Status.ConfigVersion; v == nil || v.Current != cfg3 || v.Desired != cfg3 {
		t.Errorf("MachineConfigNode configVersion %+v, want %s", v, cfg3)
	}

	// Metrics: state Done, last update to cfg3 without error, no drift, no failures.
	metricsDone := func() error {
		if v := gaugeWith(t, reg, "mcd_state", map[string]string{"state": wellknown.NodeStateDone}); v != 1 {
			return fmt.Errorf("mcd_state{state=Done} = %v", v)
		}
		if v := gaugeWith(t, reg, "mcd_update_state", map[string]string{"config": cfg3, "err": ""}); v != 1 {
			return fmt.Errorf("mcd_update_state{config=%s,err=\"\"} = %v", cfg3, v)
		}
		return nil
	}
	if err := metricsDone(); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "mcd_state"); err != nil || n != 1 {
		t.Errorf("mcd_state series: %d (%v), want exactly one (one-hot)", n, err)
	}
	if v := gaugeWith(t, reg, "mcd_config_drift", nil); v != 0 {
		t.Errorf("mcd_config_drift = %v, want 0", v)
	}
	if v := gaugeWith(t, reg, "mcd_reboots_failed_total", nil); v != 0 {
		t.Errorf("mcd_reboots_failed_total = %v", v)
	}
	// Drift moves the state and the drift gauge; the fix clears them.
	drifted := node.Host.Root().HostPath("/etc/imagemode/drain-b")
	if err := os.WriteFile(drifted, []byte("hand edit\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitNode(t, ctx, c, node, "drift", stateIs(wellknown.NodeStateDegraded))
	if v := gaugeWith(t, reg, "mcd_config_drift", nil); v == 0 {
		t.Error("mcd_config_drift stays 0 on drift")
	}
	if v := gaugeWith(t, reg, "mcd_state", map[string]string{"state": wellknown.NodeStateDegraded}); v != 1 {
		t.Errorf("mcd_state{state=Degraded} = %v on drift", v)
	}
	if err := os.WriteFile(drifted, []byte("b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitNode(t, ctx, c, node, "drift fixed", doneOn(cfg3))
	if err := metricsDone(); err != nil {
		t.Error(err)
	}
}

// gaugeWith returns the value of the metric name's series whose labels include labels (0 when none).
func gaugeWith(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue series
				}
			}
			switch {
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// testRegistriesSpecial: an ImageDigestMirrorSet that only adds digest-only mirrors reloads crio without
// a drain or a reboot; removing a mirror is unsafe: drain, then reload, still no reboot.
func testRegistriesSpecial(t *testing.T, ctx context.Context, env *local.Env) {
	c := env.ControlPlane.Client
	node := startNodeSpec(t, ctx, env, nodeSpec{name: "registries-0", pools: []string{"worker"}, delete: true})
	cfg0 := poolTarget(t, ctx, c, "worker", "")
	waitNode(t, ctx, c, node, "the first config", doneOn(cfg0))
	reloads := countCalls(node, "systemctl reload crio.service")

	idms := &configv1.ImageDigestMirrorSet{ObjectMeta: metav1.ObjectMeta{Name: "team-mirrors"},
		Spec: configv1.ImageDigestMirrorSetSpec{ImageDigestMirrors: []configv1.ImageDigestMirrors{{
			Source: "registry.example.com/team", Mirrors: []configv1.ImageMirror{"mirror-a.example.net/team", "mirror-b.example.net/team"}}}}}
	if err := c.Create(ctx, idms); err != nil {
		t.Fatal(err)
	}
	cfg1 := poolTarget(t, ctx, c, "worker", cfg0)
	n := waitNode(t, ctx, c, node, "the safe registries change", doneOn(cfg1))
	if got := hostFile(node, daemon.RegistriesConfPath); !strings.Contains(got, "mirror-b.example.net/team") {
		t.Fatalf("registries.conf lacks the mirror:\n%s", got)
	}
	if got := countCalls(node, "systemctl reload crio.service"); got != reloads+1 {
		t.Errorf("crio reloaded %d times for the safe change, want 1", got-reloads)
	}
	if d := n.Annotations[wellknown.DesiredDrainAnnotation]; strings.HasSuffix(d, cfg1) {
		t.Errorf("desiredDrain %q for a safe registries change", d)
	}
	if node.Reboots() != 0 {
		t.Errorf("%d reboots for a safe registries change", node.Reboots())
	}

	// Removing a mirror: unsafe.
	if err := c.Get(ctx, client.ObjectKeyFromObject(idms), idms); err != nil {
		t.Fatal(err)
	}
	idms.Spec.ImageDigestMirrors[0].Mirrors = idms.Spec.ImageDigestMirrors[0].Mirrors[:1]
	if err := c.Update(ctx, idms); err != nil {
		t.Fatal(err)
	}
	cfg2 := poolTarget(t, ctx, c, "worker", cfg1)
	n = waitNode(t, ctx, c, node, "the unsafe registries change", func(n *corev1.Node) bool {
		return doneOn(cfg2)(n) && n.Annotations[wellknown.DesiredDrainAnnotation] == "uncordon-"+cfg2
	})
	if got := hostFile(node, daemon.RegistriesConfPath); strings.Contains(got, "mirror-b.example.net/team") {
		t.Errorf("registries.conf still has the removed mirror:\n%s", got)
	}
	if got := countCalls(node, "systemctl reload crio.service"); got != reloads+2 {
		t.Errorf("crio reloaded %d times in all, want 2", got-reloads)
	}
	if node.Reboots() != 0 || n.Spec.Unschedulable {
		t.Errorf("unsafe registries change: %d reboots, unschedulable %t; want a drain and a reload only", node.Reboots(), n.Spec.Unschedulable)
	}
}
