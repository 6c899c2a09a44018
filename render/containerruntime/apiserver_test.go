package containerruntime

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	operatorv1alpha1 "github.com/openshift/api/operator/v1alpha1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vincent-petithory/dataurl"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/imagemode/imagemode/examples"
	"github.com/imagemode/imagemode/internal/controlplane"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/render/machineconfig"
	"github.com/imagemode/imagemode/render/registries"
	"github.com/imagemode/imagemode/render/renderer"
)

// An IDMS the API server accepts but the registry validation refuses: NeverContactSource with the source as a
// mirror. (A mirror with a tag never gets this far: the CRD's pattern refuses it, which the test checks too.)
const invalidIDMS = `apiVersion: config.openshift.io/v1
kind: ImageDigestMirrorSet
metadata:
  name: bad-mirrors
spec:
  imageDigestMirrors:
  - source: registry.example.org/team
    mirrors:
    - registry.example.org/team
    mirrorSourcePolicy: NeverContactSource
`

const taggedMirrorIDMS = `apiVersion: config.openshift.io/v1
kind: ImageDigestMirrorSet
metadata:
  name: tagged-mirror
spec:
  imageDigestMirrors:
  - source: registry.example.org/team
    mirrors:
    - mirror.example.net/team:v1
`

// TestRegistriesControllerOnAPIServer runs this controller and the render controller in one manager against a
// real API server and applies the docs' ImageContentSourcePolicy with kubectl, as a user does.
func TestRegistriesControllerOnAPIServer(t *testing.T) {
	cp := controlplane.Start(t, controlplane.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := cp.Client

	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{Scheme: cp.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	require.NoError(t, err)
	render := &renderer.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("render"), Version: "test-v1"}
	require.NoError(t, render.SetupWithManager(mgr))
	regs := &Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("container-runtime-config"), Version: "test-v1"}
	require.NoError(t, regs.SetupWithManager(mgr))
	mgrCtx, stopMgr := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	t.Cleanup(func() { stopMgr(); <-done })

	require.NoError(t, c.Create(ctx, renderer.NewControllerConfig("quay.io/openshift/rhcos@sha256:base", "quay.io/openshift/ext@sha256:base", "4.19.0")))
	for _, role := range []string{"master", "worker", "infra"} {
		require.NoError(t, c.Create(ctx, fileConfig("00-"+role, role, "/etc/"+role, role)))
	}
	builtIn := map[string]string{wellknown.BuiltInPoolLabel: ""}
	require.NoError(t, c.Create(ctx, newPool("master", builtIn, "master")))
	require.NoError(t, c.Create(ctx, newPool("worker", builtIn, "worker")))
	require.NoError(t, c.Create(ctx, newPool("infra", nil, "worker", "infra")))
	pools := []string{"master", "worker", "infra"}
	before := map[string]string{}
	for _, p := range pools {
		before[p] = waitRendered(ctx, t, c, p, func(name string) bool { return name != "" })
	}
	for _, p := range pools {
		assertGone(ctx, t, c, GeneratedName(p), "nothing to configure yet")
	}

	// The docs' ICSP, applied unchanged: the built-in pools get generated configs, all pools re-render.
	icspYAML, err := examples.Doc(examples.ImageContentSourcePolicyUBI8Repo)
	require.NoError(t, err)
	out, err := cp.Kubectl(ctx, icspYAML, "apply", "-f", "-")
	require.NoError(t, err, out)
	wantConf, err := registries.Generate([]byte(registries.DefaultRegistriesConf),
		registries.Inputs{ICSPs: []operatorv1alpha1.ImageContentSourcePolicy{docsICSP(t)}})
	require.NoError(t, err)
	generated := map[string]*mcfgv1.MachineConfig{}
	for _, p := range []string{"master", "worker"} {
		mc := waitConfig(ctx, t, c, GeneratedName(p))
		assert.Equal(t, p, mc.Labels[wellknown.RoleLabel])
		assert.Equal(t, "test-v1", mc.Annotations[wellknown.GeneratedByControllerVersionAnnotation])
		assert.Empty(t, mc.OwnerReferences)
		_, contents := files(t, mc)
		assert.Equal(t, string(wantConf), string(contents[RegistriesConfPath]), "%s registries.conf", mc.Name)
		assert.NotContains(t, contents, PolicyJSONPath, "%s: mirrors alone leave policy.json alone, as on OpenShift", mc.Name)
		generated[p] = mc
	}
	withMirrors := map[string]string{}
	for _, p := range pools {
		withMirrors[p] = waitRendered(ctx, t, c, p, func(name string) bool { return name != before[p] })
		rendered := &mcfgv1.MachineConfig{}
		require.NoError(t, c.Get(ctx, types.NamespacedName{Name: withMirrors[p]}, rendered))
		cfg, err := machineconfig.ParseIgnition(rendered.Spec.Config.Raw)
		require.NoError(t, err)
		var found bool
		for _, f := range cfg.Storage.Files {
			if f.Path == RegistriesConfPath {
				found = true
				du := decodeSource(t, f.Contents.Source)
				assert.Equal(t, string(wantConf), string(du), "pool %s rendered registries.conf", p)
			}
		}
		assert.True(t, found, "pool %s: rendered config %s has no %s", p, withMirrors[p], RegistriesConfPath)
	}
	assert.Contains(t, sourceNames(ctx, t, c, "infra"), "99-worker-generated-registries", "custom pools get it through the worker role")
	assert.NotContains(t, sourceNames(ctx, t, c, "infra"), "99-infra-generated-registries")
	assertGone(ctx, t, c, GeneratedName("infra"), "custom pools get no generated config of their own")

	// A tagged mirror is refused by the API server already.
	out, err = cp.Kubectl(ctx, []byte(taggedMirrorIDMS), "apply", "-f", "-")
	require.Error(t, err, "the CRD should refuse a mirror with a tag: %s", out)
	assert.Contains(t, out, "spec.imageDigestMirrors[0].mirrors[0]")

	// An IDMS only the registry validation refuses: a Warning event names it; nothing changes.
	out, err = cp.Kubectl(ctx, []byte(invalidIDMS), "apply", "-f", "-")
	require.NoError(t, err, out)
	ev := waitWarning(ctx, t, cp, "ImageDigestMirrorSet", "bad-mirrors")
	assert.Equal(t, ReasonInvalidRegistryConfig, ev.Reason)
	assert.Contains(t, ev.Note, "imagedigestmirrorsets/bad-mirrors: spec.imageDigestMirrors[0].mirrors[0]")
	assert.Contains(t, ev.Note, "NeverContactSource")
	for _, p := range []string{"master", "worker"} {
		mc := &mcfgv1.MachineConfig{}
		require.NoError(t, c.Get(ctx, types.NamespacedName{Name: GeneratedName(p)}, mc))
		assert.Equal(t, generated[p].ResourceVersion, mc.ResourceVersion, "%s must be left as it was", mc.Name)
	}
	for _, p := range pools {
		assert.Equal(t, withMirrors[p], currentRendered(ctx, t, c, p), "pool %s keeps its rendered config", p)
	}
	_, err = cp.Kubectl(ctx, nil, "delete", "imagedigestmirrorset", "bad-mirrors")
	require.NoError(t, err)

	// A pass over unchanged state writes nothing.
	assertNoWrites(ctx, t, cp, pools)

	// Deleting the ICSP: nothing to configure, the generated configs go, the pools render back.
	out, err = cp.Kubectl(ctx, nil, "delete", "imagecontentsourcepolicy", "ubi8repo")
	require.NoError(t, err, out)
	for _, p := range []string{"master", "worker"} {
		waitGone(ctx, t, c, GeneratedName(p))
	}
	for _, p := range pools {
		assert.Equal(t, before[p], waitRendered(ctx, t, c, p, func(name string) bool { return name == before[p] }))
	}
	assertNoWrites(ctx, t, cp, pools)

	// The image config with only search registries: the drop-in alone, in the generated and the rendered
	// configs, and neither registries.conf nor policy.json.
	out, err = cp.Kubectl(ctx, []byte(searchOnlyImage), "apply", "-f", "-")
	require.NoError(t, err, out)
	wantDropIn := "unqualified-search-registries = [\"reg1.io\", \"reg2.io\"]\nshort-name-mode = \"\"\nadditional-layer-store-auth-helper = \"\"\n"
	for _, p := range []string{"master", "worker"} {
		_, contents := files(t, waitConfig(ctx, t, c, GeneratedName(p)))
		assert.Equal(t, wantDropIn, string(contents[registries.SearchRegistriesDropInPath]), "pool %s", p)
		assert.NotContains(t, contents, RegistriesConfPath, "pool %s", p)
		assert.NotContains(t, contents, PolicyJSONPath, "pool %s", p)
	}
	for _, p := range pools {
		rendered := &mcfgv1.MachineConfig{}
		require.NoError(t, c.Get(ctx, types.NamespacedName{Name: waitRendered(ctx, t, c, p, func(name string) bool { return name != before[p] })}, rendered))
		cfg, err := machineconfig.ParseIgnition(rendered.Spec.Config.Raw)
		require.NoError(t, err)
		paths := map[string][]byte{}
		for _, f := range cfg.Storage.Files {
			paths[f.Path] = decodeSource(t, f.Contents.Source)
		}
		assert.Equal(t, wantDropIn, string(paths[registries.SearchRegistriesDropInPath]), "pool %s rendered drop-in", p)
		assert.NotContains(t, paths, RegistriesConfPath, "pool %s", p)
		assert.NotContains(t, paths, PolicyJSONPath, "pool %s", p)
	}

	// Allowed registries as well: policy.json joins the drop-in, registries.conf still untouched.
	out, err = cp.Kubectl(ctx, nil, "patch", "image.config.openshift.io", "cluster", "--type=merge",
		"-p", `{"spec":{"registrySources":{"allowedRegistries":["quay.io","reg1.io","reg2.io"]}}}`)
	require.NoError(t, err, out)
	for _, p := range []string{"master", "worker"} {
		var contents map[string][]byte
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			mc := &mcfgv1.MachineConfig{}
			if err := c.Get(ctx, types.NamespacedName{Name: GeneratedName(p)}, mc); err != nil {
				return false, client.IgnoreNotFound(err)
			}
			_, contents = files(t, mc)
			_, ok := contents[PolicyJSONPath]
			return ok, nil
		})
		require.NoError(t, err, "pool %s never got policy.json", p)
		assert.Contains(t, string(contents[PolicyJSONPath]), "reg1.io")
		assert.Equal(t, wantDropIn, string(contents[registries.SearchRegistriesDropInPath]))
		assert.NotContains(t, contents, RegistriesConfPath)
	}
	out, err = cp.Kubectl(ctx, nil, "delete", "image.config.openshift.io", "cluster")
	require.NoError(t, err, out)
	for _, p := range []string{"master", "worker"} {
		waitGone(ctx, t, c, GeneratedName(p))
	}
}

// searchOnlyImage is the docs' image config shape with only containerRuntimeSearchRegistries set.
const searchOnlyImage = `apiVersion: config.openshift.io/v1
kind: Image
metadata:
  name: cluster
spec:
  registrySources:
    containerRuntimeSearchRegistries:
    - reg1.io
    - reg2.io
`

func newPool(name string, labels map[string]string, roles ...string) *mcfgv1.MachineConfigPool {
	return &mcfgv1.MachineConfigPool{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: mcfgv1.MachineConfigPoolSpec{MachineConfigSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: wellknown.RoleLabel, Operator: metav1.LabelSelectorOpIn, Values: roles},
		}}},
	}
}

func fileConfig(name, role, path, data string) *mcfgv1.MachineConfig {
	raw, _ := json.Marshal(map[string]any{"ignition": map[string]any{"version": "3.2.0"},
		"storage": map[string]any{"files": []any{map[string]any{"path": path, "contents": map[string]any{"source": "data:," + data}}}}})
	return &mcfgv1.MachineConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{wellknown.RoleLabel: role}},
		Spec:       mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: raw}},
	}
}

// assertNoWrites runs a fresh reconciler, as after a restart, over every pool with a client that counts
// writes, and checks that it writes nothing.
func assertNoWrites(ctx context.Context, t *testing.T, cp *controlplane.ControlPlane, pools []string) {
	t.Helper()
	ww, err := client.NewWithWatch(cp.Config, client.Options{Scheme: cp.Scheme})
	require.NoError(t, err)
	var writes atomic.Int32
	fresh := &Reconciler{Client: countWrites(ww, &writes), Recorder: events.NewFakeRecorder(10), Version: "test-v1"}
	for _, p := range pools {
		_, err := fresh.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Name: p}})
		require.NoError(t, err, "pool %s", p)
	}
	assert.Zero(t, writes.Load(), "a pass over unchanged state must not write")
}

func currentRendered(ctx context.Context, t *testing.T, c client.Client, pool string) string {
	t.Helper()
	p := &mcfgv1.MachineConfigPool{}
	require.NoError(t, c.Get(ctx, types.NamespacedName{Name: pool}, p))
	return p.Spec.Configuration.Name
}

func sourceNames(ctx context.Context, t *testing.T, c client.Client, pool string) []string {
	t.Helper()
	p := &mcfgv1.MachineConfigPool{}
	require.NoError(t, c.Get(ctx, types.NamespacedName{Name: pool}, p))
	var names []string
	for _, s := range p.Spec.Configuration.Source {
		names = append(names, s.Name)
	}
	return names
}

// waitRendered waits until the pool's spec.configuration.name satisfies ok and returns it.
func waitRendered(ctx context.Context, t *testing.T, c client.Client, pool string, ok func(string) bool) string {
	t.Helper()
	var name string
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		name = currentRendered(ctx, t, c, pool)
		return ok(name), nil
	})
	require.NoError(t, err, "pool %s: rendered config still %q", pool, name)
	return name
}

func waitConfig(ctx context.Context, t *testing.T, c client.Client, name string) *mcfgv1.MachineConfig {
	t.Helper()
	mc := &mcfgv1.MachineConfig{}
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		err := c.Get(ctx, types.NamespacedName{Name: name}, mc)
		return err == nil, client.IgnoreNotFound(err)
	})
	require.NoError(t, err, "MachineConfig %s never appeared", name)
	return mc
}

func waitGone(ctx context.Context, t *testing.T, c client.Client, name string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		err := c.Get(ctx, types.NamespacedName{Name: name}, &mcfgv1.MachineConfig{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	require.NoError(t, err, "MachineConfig %s was not deleted", name)
}

func assertGone(ctx context.Context, t *testing.T, c client.Client, name, why string) {
	t.Helper()
	err := c.Get(ctx, types.NamespacedName{Name: name}, &mcfgv1.MachineConfig{})
	assert.True(t, apierrors.IsNotFound(err), "MachineConfig %s should not exist (%s): %v", name, why, err)
}

// eventNote is the part of an events.k8s.io/v1 Event the test checks.
type eventNote struct {
	Reason, Note string
}

// waitWarning waits for a Warning event about the object of kind and name and returns it.
func waitWarning(ctx context.Context, t *testing.T, cp *controlplane.ControlPlane, kind, name string) eventNote {
	t.Helper()
	var got eventNote
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := cp.Kube.EventsV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, e := range list.Items {
			if e.Type == "Warning" && e.Regarding.Kind == kind && e.Regarding.Name == name {
				got = eventNote{Reason: e.Reason, Note: e.Note}
				return true, nil
			}
		}
		return false, nil
	})
	require.NoError(t, err, "no Warning event about %s %s", kind, name)
	return got
}

func decodeSource(t *testing.T, source *string) []byte {
	t.Helper()
	require.NotNil(t, source)
	du, err := dataurl.DecodeString(*source)
	require.NoError(t, err)
	return du.Data
}
