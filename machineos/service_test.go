package machineos_test

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/imagemode/imagemode/builder/buildah"
	"github.com/imagemode/imagemode/builder/buildcmd"
	"github.com/imagemode/imagemode/builder/jobs"
	"github.com/imagemode/imagemode/builder/podrunner"
	"github.com/imagemode/imagemode/internal/controlplane"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos"
	"github.com/imagemode/imagemode/machineos/osbuild"
	"github.com/imagemode/imagemode/registry"
	"github.com/imagemode/imagemode/registry/localregistry"
	"github.com/imagemode/imagemode/render"
	"github.com/imagemode/imagemode/render/renderer"
	"github.com/imagemode/imagemode/testimages"
)

// execAsEnv makes this test binary act as the build pod's program when the pod runner runs it.
const execAsEnv = "IMAGEMODE_TEST_EXEC_AS"

func TestMain(m *testing.M) {
	if buildah.Reexec() {
		return
	}
	// The secret-marker search (TestBadBuildInputs) reads the controllers' logs.
	controlplane.CaptureLogs()
	if os.Getenv(execAsEnv) == "imagemode-builder" { // as cmd/imagemode-builder does
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		root := &cobra.Command{Use: "imagemode-builder", SilenceUsage: true}
		root.AddCommand(buildcmd.NewCommand())
		err := root.ExecuteContext(ctx)
		stop()
		if err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	// The integration tests wait mostly (Job back-offs, pods, pushes), each on its own control plane: run
	// four at once unless -parallel says otherwise (more, each with its own API server, etcd, KCM and
	// builds, starved the 2 cores past the tests' deadlines).
	flag.Parse()
	parallelSet := false
	flag.Visit(func(f *flag.Flag) { parallelSet = parallelSet || f.Name == "test.parallel" })
	if !parallelSet {
		_ = flag.Set("test.parallel", "4")
	}
	os.Exit(m.Run())
}

// env is a cluster with the build service, the render controller, a pod runner and a registry.
type env struct {
	cp              *controlplane.ControlPlane
	reg             *localregistry.Registry
	c               client.Client
	base            string
	opts            envOptions
	runner          *podrunner.Runner
	stopControllers func()
}

// envOptions vary the environment.
type envOptions struct {
	// baseTag, when set, is the tag (e.g. ":moving") the base image is pushed under and named by in the
	// ControllerConfig, instead of its digest.
	baseTag string
	// service adjusts the build service's options.
	service func(*machineos.Options)
	// registryPassword, when set, is the registry account's password (a secret marker).
	registryPassword string
	// noControllers: the test starts the controllers itself (e.g. several replicas).
	noControllers bool
}

// startControllers runs the render controllers and the build service in a manager of their own.
func (e *env) startControllers(ctx context.Context, t testing.TB) func() {
	t.Helper()
	return run(ctx, t, e.newControllerManager(t, ctrl.Options{}))
}

// newControllerManager returns a manager (with base's leader election settings) running the render
// controllers and the build service.
func (e *env) newControllerManager(t testing.TB, base ctrl.Options) ctrl.Manager {
	t.Helper()
	base.Scheme, base.Metrics, base.Cache = e.cp.Scheme, metricsserver.Options{BindAddress: "0"}, machineos.CacheOptions(wellknown.MCONamespace)
	base.Controller = config.Controller{SkipNameValidation: ptr.To(true)}
	mgr, err := ctrl.NewManager(e.cp.Config, base)
	require.NoError(t, err)
	require.NoError(t, render.AddToManager(mgr, render.Options{Version: "test"}))
	opts := machineos.Options{
		Jobs:                 jobs.Options{Namespace: wellknown.MCONamespace, Image: "imagemode:test", CacheHostPath: "/var/lib/imagemode/build-cache"},
		ControllerConfigName: wellknown.ControllerConfigName,
	}
	if e.opts.service != nil {
		e.opts.service(&opts)
	}
	require.NoError(t, machineos.AddToManager(mgr, opts))
	return mgr
}

func newManager(t testing.TB, cp *controlplane.ControlPlane) ctrl.Manager {
	t.Helper()
	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{Scheme: cp.Scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)}}) // tests run several managers
	require.NoError(t, err)
	return mgr
}

// run starts mgr and returns a function that stops it and waits. A manager that fails (its caches never
// sync, say) is reported at once, not found later as a build that never moves.
func run(ctx context.Context, t testing.TB, mgr ctrl.Manager) func() {
	mgrCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		err := mgr.Start(mgrCtx)
		if err != nil && mgrCtx.Err() == nil {
			t.Errorf("manager stopped: %v", err)
		}
		done <- err
	}()
	var stopped bool
	return func() {
		if !stopped {
			stopped = true
			stop()
			<-done
		}
	}
}

func startEnv(t testing.TB) (*env, context.Context) {
	t.Helper()
	return startEnvWith(t, envOptions{})
}

func startEnvWith(t testing.TB, opts envOptions) (*env, context.Context) {
	t.Helper()
	cp := controlplane.Start(t, controlplane.Options{ControllerManager: true})
	var reg *localregistry.Registry
	if opts.registryPassword == "" {
		reg = localregistry.StartForTest(t)
	} else {
		var err error
		reg, err = localregistry.Start(context.Background(), localregistry.Options{Dir: t.TempDir(), Password: opts.registryPassword})
		require.NoError(t, err)
		t.Cleanup(func() { _ = reg.Stop() })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	t.Cleanup(cancel)
	tag := ":base"
	if opts.baseTag != "" {
		tag = opts.baseTag
	}
	base, err := testimages.Push(ctx, reg.SystemContext(), testimages.Options{}, reg.Ref("openshift/rhcos", tag))
	require.NoError(t, err)
	e := &env{cp: cp, reg: reg, c: cp.Client, base: base, opts: opts}
	e.createClusterObjects(ctx, t, true)

	// The pod runner plays the kubelet in a manager of its own, so the controllers can be restarted alone.
	ns := wellknown.MCONamespace
	runnerMgr := newManager(t, cp)
	runner := &podrunner.Runner{Client: runnerMgr.GetClient(), Opts: podrunner.Options{
		Namespace: ns, Selector: labels.SelectorFromSet(labels.Set{wellknown.EphemeralBuildObjectLabel: ""}), NodeName: "local-runner",
		StateDir: t.TempDir(), HostPathRoot: t.TempDir(), Programs: map[string]string{"imagemode-builder": os.Args[0]},
		Env: []string{execAsEnv + "=imagemode-builder", "KUBECONFIG=" + cp.KubeconfigPath}, KillGrace: 2 * time.Second,
	}}
	require.NoError(t, runner.SetupWithManager(runnerMgr))
	e.runner = runner
	stopRunner := run(ctx, t, runnerMgr)
	t.Cleanup(func() { stopRunner(); runner.Stop() })
	e.stopControllers = func() {}
	if !opts.noControllers {
		e.stopControllers = e.startControllers(ctx, t)
	}
	t.Cleanup(func() { e.stopControllers() })
	return e, ctx
}

// createClusterObjects creates what the docs' cluster has for a build: the pull and push secrets, the
// ControllerConfig naming the base image and the registry's CA, the worker config, the worker and
// layered-image pools, and (withNamespace) the namespace.
func (e *env) createClusterObjects(ctx context.Context, t testing.TB, withNamespace bool) {
	t.Helper()
	reg, base, opts := e.reg, e.base, e.opts
	ns := wellknown.MCONamespace
	dockercfg := fmt.Sprintf(`{%q:{"auth":%q}}`, reg.Host, b64(reg.Username+":"+reg.Password))
	ccBase := base
	if opts.baseTag != "" {
		ccBase = reg.Ref("openshift/rhcos", opts.baseTag)
	}
	cc := renderer.NewControllerConfig(ccBase, "", "4.19.0-test")
	ca, err := os.ReadFile(reg.CertDir + "/ca.crt")
	require.NoError(t, err)
	cc.Spec.ImageRegistryBundleUserData = []mcfgv1.ImageRegistryBundle{{File: strings.ReplaceAll(reg.Host, ":", ".."), Data: ca}}
	var objs []client.Object
	if withNamespace {
		objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	for _, obj := range append(objs,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: wellknown.GlobalPullSecretCopy}, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{corev1.DockerConfigJsonKey: reg.DockerConfigJSON()}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "builder-dockercfg-mtcl23"}, Type: corev1.SecretTypeDockercfg,
			Data: map[string][]byte{corev1.DockerConfigKey: []byte(dockercfg)}},
		cc,
		mc("00-worker", "worker", "/etc/imagemode/role", "worker"),
		pool("worker", "worker"),
		pool("layered-image", "worker", "layered-image"),
	) {
		require.NoError(t, e.c.Create(ctx, obj))
	}
}

// TestBuildService runs the docs' MachineOSConfig (push target moved to the local registry) through the
// build service on the real parts, then a layer-only change, then the rebuild annotation.
func TestBuildService(t *testing.T) {
	t.Parallel() // each test has its own control plane, registry and pod runner
	e, ctx := startEnv(t)
	mosc := docsMOSC(e.reg.Ref("openshift/os-image", ":latest"),
		"FROM configs AS final\nRUN dnf install -y cowsay && \\\n  dnf clean all && \\\n  ostree container commit\n"+
			"RUN test \"$(cat /etc/imagemode/role)\" = worker && test -x /usr/bin/cowsay && test -f /etc/machine-config-daemon/currentconfig\n")
	require.NoError(t, e.c.Create(ctx, mosc))

	first := waitBuild(ctx, t, e.c, osbuild.StateSucceeded)
	assert.Regexp(t, `^layered-image-[0-9a-f]{32}$`, first.Name)
	digested := string(first.Status.DigestedImagePushSpec)
	assert.Regexp(t, `^127\.0\.0\.1:\d+/openshift/os-image@sha256:[0-9a-f]{64}$`, digested)
	require.NotNil(t, first.Status.BuildStart)
	require.NotNil(t, first.Status.BuildEnd)
	require.NotNil(t, first.Status.Builder)
	assert.Equal(t, "build-"+first.Name, first.Status.Builder.Job.Name)
	assert.Equal(t, first.Name, first.Labels[wellknown.MachineOSConfigLabel]+"-"+strings.TrimPrefix(first.Name, "layered-image-"))

	info, err := registry.Inspect(ctx, e.reg.SystemContext(), digested)
	require.NoError(t, err)
	assert.Equal(t, "layered-image", info.Labels["machineconfigpool"])
	assert.Equal(t, first.Spec.MachineConfig.Name, info.Labels["machineconfig"])
	waitMOSC(ctx, t, e.c, func(m *mcfgv1.MachineOSConfig) bool {
		return string(m.Status.CurrentImagePullSpec) == digested && m.Annotations[wellknown.CurrentMachineOSBuildAnnotation] == first.Name
	})
	waitGone(ctx, t, e.c, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: wellknown.MCONamespace, Name: "build-" + first.Name}})
	waitGone(ctx, t, e.c, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: wellknown.MCONamespace, Name: "containerfile-" + first.Name}})
	waitGone(ctx, t, e.c, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: wellknown.MCONamespace, Name: "final-" + first.Name}})

	// A files-only MachineConfig for the pool: a new rendered config, a new build name, no build.
	require.NoError(t, e.c.Create(ctx, mc("10-layered-file", "layered-image", "/etc/imagemode/extra", "x")))
	reused := waitBuildOther(ctx, t, e.c, first.Name, osbuild.StateSucceeded)
	assert.Equal(t, first.Name, reused.Annotations[machineos.ReusedFromAnnotation])
	assert.Equal(t, digested, string(reused.Status.DigestedImagePushSpec))
	err = e.c.Get(ctx, types.NamespacedName{Namespace: wellknown.MCONamespace, Name: "build-" + reused.Name}, &batchv1.Job{})
	assert.True(t, apierrors.IsNotFound(err), "a layer-only change must not start a Job")

	// The rebuild annotation: the current build is rebuilt under the same name; the annotation goes.
	latest := &mcfgv1.MachineOSConfig{}
	require.NoError(t, e.c.Get(ctx, types.NamespacedName{Name: mosc.Name}, latest))
	latest.Annotations[wellknown.RebuildAnnotation] = ""
	require.NoError(t, e.c.Update(ctx, latest))
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 4*time.Minute, true, func(ctx context.Context) (bool, error) {
		b := &mcfgv1.MachineOSBuild{}
		if err := e.c.Get(ctx, types.NamespacedName{Name: reused.Name}, b); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		return b.UID != reused.UID && osbuild.StateOf(b) == osbuild.StateSucceeded && b.Annotations[machineos.ReusedFromAnnotation] == "", nil
	}), "the rebuilt build never succeeded")
	waitMOSC(ctx, t, e.c, func(m *mcfgv1.MachineOSConfig) bool {
		_, still := m.Annotations[wellknown.RebuildAnnotation]
		return !still
	})

	// Revert the files-only change: the first build is the right one again, but its image was deleted from
	// the registry meanwhile, so it is built again instead of being handed out.
	sys := e.reg.SystemContext()
	require.NoError(t, registry.Delete(ctx, sys, digested))
	exists, err := registry.Exists(ctx, sys, digested)
	require.NoError(t, err)
	require.False(t, exists)
	require.NoError(t, e.c.Delete(ctx, &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: "10-layered-file"}}))
	var rebuilt *mcfgv1.MachineOSBuild
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 4*time.Minute, true, func(ctx context.Context) (bool, error) {
		b := &mcfgv1.MachineOSBuild{}
		if err := e.c.Get(ctx, types.NamespacedName{Name: first.Name}, b); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		rebuilt = b
		return b.UID != first.UID && osbuild.StateOf(b) == osbuild.StateSucceeded, nil
	}), "the reverted build was not built again")
	exists, err = registry.Exists(ctx, sys, string(rebuilt.Status.DigestedImagePushSpec))
	require.NoError(t, err)
	assert.True(t, exists, "the rebuilt image is in the registry")
	waitMOSC(ctx, t, e.c, func(m *mcfgv1.MachineOSConfig) bool {
		return m.Status.CurrentImagePullSpec == rebuilt.Status.DigestedImagePushSpec
	})
}

// TestInvalidContainerfileFailsAtOnce: a Containerfile that does not parse fails the build without a Job
// and marks the pool ImageBuildDegraded.
func TestInvalidContainerfileFailsAtOnce(t *testing.T) {
	t.Parallel() // each test has its own control plane, registry and pod runner
	e, ctx := startEnv(t)
	require.NoError(t, e.c.Create(ctx, docsMOSC(e.reg.Ref("openshift/os-image", ":latest"), "FROM configs AS final\nFROBNICATE the image\n")))
	failed := waitBuild(ctx, t, e.c, osbuild.StateFailed)
	err := e.c.Get(ctx, types.NamespacedName{Namespace: wellknown.MCONamespace, Name: "build-" + failed.Name}, &batchv1.Job{})
	assert.True(t, apierrors.IsNotFound(err), "no Job for an invalid Containerfile")
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		p := &mcfgv1.MachineConfigPool{}
		if err := e.c.Get(ctx, types.NamespacedName{Name: "layered-image"}, p); err != nil {
			return false, err
		}
		for _, c := range p.Status.Conditions {
			if c.Type == mcfgv1.MachineConfigPoolImageBuildDegraded && c.Status == corev1.ConditionTrue {
				return strings.Contains(c.Message, "Failed to build OS image for pool layered-image (MachineOSBuild: "+failed.Name+")"), nil
			}
		}
		return false, nil
	}), "pool never became ImageBuildDegraded")
}

func docsMOSC(pushSpec, containerfile string) *mcfgv1.MachineOSConfig {
	return &mcfgv1.MachineOSConfig{ObjectMeta: metav1.ObjectMeta{Name: "layered-image"}, Spec: mcfgv1.MachineOSConfigSpec{
		MachineConfigPool:       mcfgv1.MachineConfigPoolReference{Name: "layered-image"},
		Containerfile:           []mcfgv1.MachineOSContainerfile{{ContainerfileArch: mcfgv1.NoArch, Content: containerfile}},
		ImageBuilder:            mcfgv1.MachineOSImageBuilder{ImageBuilderType: mcfgv1.JobBuilder},
		BaseImagePullSecret:     &mcfgv1.ImageSecretObjectReference{Name: wellknown.GlobalPullSecretCopy},
		RenderedImagePushSpec:   mcfgv1.ImageTagFormat(pushSpec),
		RenderedImagePushSecret: mcfgv1.ImageSecretObjectReference{Name: "builder-dockercfg-mtcl23"},
	}}
}

func mc(name, role, path, data string) *mcfgv1.MachineConfig {
	ign := fmt.Sprintf(`{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":%q,"mode":420,"contents":{"source":"data:,%s"}}]}}`, path, data)
	return &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{wellknown.RoleLabel: role}},
		Spec: mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: []byte(ign)}}}
}

func pool(name string, roles ...string) *mcfgv1.MachineConfigPool {
	return &mcfgv1.MachineConfigPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: mcfgv1.MachineConfigPoolSpec{
		MachineConfigSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: wellknown.RoleLabel, Operator: metav1.LabelSelectorOpIn, Values: roles}}},
		NodeSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{"node-role.kubernetes.io/" + name: ""}},
	}}
}

func waitBuild(ctx context.Context, t *testing.T, c client.Client, state osbuild.State) *mcfgv1.MachineOSBuild {
	t.Helper()
	return waitBuildOther(ctx, t, c, "", state)
}

// waitBuildOther waits for a build other than not in state (and fails fast on a terminal state that is not it).
func waitBuildOther(ctx context.Context, t *testing.T, c client.Client, not string, state osbuild.State) *mcfgv1.MachineOSBuild {
	t.Helper()
	var got *mcfgv1.MachineOSBuild
	var last string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 4*time.Minute, true, func(ctx context.Context) (bool, error) {
		var list mcfgv1.MachineOSBuildList
		if err := c.List(ctx, &list); err != nil {
			return false, err
		}
		last = ""
		for i := range list.Items {
			b := &list.Items[i]
			s := osbuild.StateOf(b)
			last += fmt.Sprintf("%s=%q ", b.Name, s)
			if b.Name != not && s == state {
				got = b
				return true, nil
			}
			if b.Name != not && s.IsTerminal() && s != state {
				return false, fmt.Errorf("build %s ended %s", b.Name, s)
			}
		}
		return false, nil
	})
	if err != nil {
		var pods corev1.PodList
		_ = c.List(context.Background(), &pods, client.InNamespace(wellknown.MCONamespace))
		for _, p := range pods.Items {
			for _, cs := range p.Status.ContainerStatuses {
				if cs.State.Terminated != nil {
					t.Logf("pod %s: exit %d: %s", p.Name, cs.State.Terminated.ExitCode, cs.State.Terminated.Message)
				}
			}
		}
	}
	require.NoError(t, err, "waiting for a build in state %s (builds: %s)", state, last)
	return got
}

func waitMOSC(ctx context.Context, t *testing.T, c client.Client, ok func(*mcfgv1.MachineOSConfig) bool) {
	t.Helper()
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		m := &mcfgv1.MachineOSConfig{}
		if err := c.Get(ctx, types.NamespacedName{Name: "layered-image"}, m); err != nil {
			return false, err
		}
		return ok(m), nil
	}))
}

func waitGone(ctx context.Context, t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		return apierrors.IsNotFound(err), nil
	}), "%T %s never went away", obj, obj.GetName())
}

func b64(s string) string { return base64Encode([]byte(s)) }

func base64Encode(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestBuildFailuresAndRestarts covers a build whose RUN fails (four attempts, then Failed and the pool
// ImageBuildDegraded), a Job deleted mid-build (Interrupted), and the controllers restarted mid-build (the
// running Job is picked up: no second Job, the build succeeds).
func TestBuildFailuresAndRestarts(t *testing.T) {
	t.Parallel() // each test has its own control plane, registry and pod runner
	e, ctx := startEnv(t)
	for _, p := range []string{"fails", "interrupted", "restarted", "recreated"} {
		require.NoError(t, e.c.Create(ctx, pool(p, "worker", p)))
	}
	newMOSC := func(p, containerfile string) {
		m := docsMOSC(e.reg.Ref("openshift/"+p, ":latest"), containerfile)
		m.Name, m.Spec.MachineConfigPool.Name = p, p
		require.NoError(t, e.c.Create(ctx, m))
	}
	newMOSC("fails", "FROM configs AS final\nRUN echo this build breaks >&2 && exit 7\n")
	// The other builds sleep long enough to be caught running whatever the machine's load (each step below
	// acts as soon as its build is seen Building); "fails" takes longer anyway (its back-offs).
	newMOSC("interrupted", "FROM configs AS final\nRUN sleep 300\n")
	newMOSC("restarted", "FROM configs AS final\nRUN sleep 20 && touch /etc/after-restart\n")
	newMOSC("recreated", "FROM configs AS final\nRUN sleep 20 && touch /etc/recreated\n")

	// Restart the controllers while "restarted" builds.
	building := waitPoolBuild(ctx, t, e.c, "restarted", func(b *mcfgv1.MachineOSBuild) bool { return osbuild.StateOf(b) == osbuild.StateBuilding })
	e.stopControllers()
	e.stopControllers = e.startControllers(ctx, t)

	// Delete the Job of "interrupted" while it runs.
	inflight := waitPoolBuild(ctx, t, e.c, "interrupted", func(b *mcfgv1.MachineOSBuild) bool { return osbuild.StateOf(b) == osbuild.StateBuilding })
	require.NoError(t, e.c.Delete(ctx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: wellknown.MCONamespace, Name: "build-" + inflight.Name}},
		client.PropagationPolicy(metav1.DeletePropagationBackground)))

	// Delete the build of "recreated" while it runs: the MachineOSConfig controller makes it again (same
	// name, new object) and it succeeds.
	doomed := waitPoolBuild(ctx, t, e.c, "recreated", func(b *mcfgv1.MachineOSBuild) bool { return osbuild.StateOf(b) == osbuild.StateBuilding })
	require.NoError(t, e.c.Delete(ctx, doomed))

	done := waitPoolBuild(ctx, t, e.c, "restarted", func(b *mcfgv1.MachineOSBuild) bool { return osbuild.StateOf(b).IsTerminal() })
	assert.Equal(t, osbuild.StateSucceeded, osbuild.StateOf(done))
	assert.Equal(t, building.UID, done.UID, "the same build carried on")
	assert.Equal(t, building.Annotations[wellknown.JobUIDAnnotation], done.Annotations[wellknown.JobUIDAnnotation], "no second Job")

	interrupted := waitPoolBuild(ctx, t, e.c, "interrupted", func(b *mcfgv1.MachineOSBuild) bool { return osbuild.StateOf(b).IsTerminal() })
	assert.Equal(t, osbuild.StateInterrupted, osbuild.StateOf(interrupted))

	again := waitPoolBuild(ctx, t, e.c, "recreated", func(b *mcfgv1.MachineOSBuild) bool {
		return b.UID != doomed.UID && osbuild.StateOf(b) == osbuild.StateSucceeded
	})
	assert.Equal(t, doomed.Name, again.Name, "recreated under the same name")

	// "fails" gets its four attempts (the Job controller's back-off between them), then fails.
	failed := waitPoolBuild(ctx, t, e.c, "fails", func(b *mcfgv1.MachineOSBuild) bool { return osbuild.StateOf(b).IsTerminal() })
	assert.Equal(t, osbuild.StateFailed, osbuild.StateOf(failed))
	var pods corev1.PodList
	require.NoError(t, e.c.List(ctx, &pods, client.InNamespace(wellknown.MCONamespace), client.MatchingLabels{wellknown.MachineOSBuildLabel: failed.Name}))
	assert.Len(t, pods.Items, 4, "backoffLimit 3: four attempts")
	for _, p := range pods.Items {
		st := p.Status.ContainerStatuses[0].State.Terminated
		require.NotNil(t, st)
		assert.Contains(t, st.Message, "this build breaks", "the build's output is the pod's termination message")
	}
	// Failed builds keep their objects for inspection.
	require.NoError(t, e.c.Get(ctx, types.NamespacedName{Namespace: wellknown.MCONamespace, Name: "containerfile-" + failed.Name}, &corev1.ConfigMap{}))
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		p := &mcfgv1.MachineConfigPool{}
		if err := e.c.Get(ctx, types.NamespacedName{Name: "fails"}, p); err != nil {
			return false, err
		}
		for _, c := range p.Status.Conditions {
			if c.Type == mcfgv1.MachineConfigPoolImageBuildDegraded && c.Status == corev1.ConditionTrue {
				return strings.Contains(c.Message, "(MachineOSBuild: "+failed.Name+"): Failed: Build Failed"), nil
			}
		}
		return false, nil
	}))
}

// waitPoolBuild waits for the build of pool (named <pool>-<hash>) to satisfy ok.
func waitPoolBuild(ctx context.Context, t *testing.T, c client.Client, pool string, ok func(*mcfgv1.MachineOSBuild) bool) *mcfgv1.MachineOSBuild {
	t.Helper()
	var got *mcfgv1.MachineOSBuild
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		var list mcfgv1.MachineOSBuildList
		if err := c.List(ctx, &list, client.MatchingLabels{wellknown.MachineOSConfigLabel: pool}); err != nil {
			return false, err
		}
		for i := range list.Items {
			if ok(&list.Items[i]) {
				got = &list.Items[i]
				return true, nil
			}
		}
		return false, nil
	}), "build of pool %s never reached the expected state (%s)", pool, describePoolBuilds(c, pool))
	return got
}

// describePoolBuilds says where the builds of pool and their Jobs and pods are, for a failure message.
func describePoolBuilds(c client.Client, pool string) string {
	ctx := context.Background()
	var b strings.Builder
	var list mcfgv1.MachineOSBuildList
	_ = c.List(ctx, &list, client.MatchingLabels{wellknown.MachineOSConfigLabel: pool})
	for _, m := range list.Items {
		fmt.Fprintf(&b, "build %s uid %s state %q annotations %v;", m.Name, m.UID, osbuild.StateOf(&m), m.Annotations)
		for _, cond := range m.Status.Conditions {
			fmt.Fprintf(&b, " %s=%s(%s: %s)", cond.Type, cond.Status, cond.Reason, cond.Message)
		}
		job := &batchv1.Job{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: wellknown.MCONamespace, Name: osbuild.JobName(m.Name)}, job); err != nil {
			fmt.Fprintf(&b, "; job: %v", err)
		} else {
			fmt.Fprintf(&b, "; job uid %s status %+v", job.UID, job.Status)
		}
		var pods corev1.PodList
		_ = c.List(ctx, &pods, client.InNamespace(wellknown.MCONamespace), client.MatchingLabels{wellknown.MachineOSBuildLabel: m.Name})
		for _, p := range pods.Items {
			fmt.Fprintf(&b, "; pod %s phase %s node %q statuses %+v", p.Name, p.Status.Phase, p.Spec.NodeName, p.Status.ContainerStatuses)
		}
		cm := &corev1.ConfigMap{}
		err := c.Get(ctx, types.NamespacedName{Namespace: wellknown.MCONamespace, Name: osbuild.DigestCMName(m.Name)}, cm)
		fmt.Fprintf(&b, "; digest configmap: %v %v\n", cm.Data, err)
	}
	return b.String()
}
