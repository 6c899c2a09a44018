package rollout_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/imagemode/imagemode/internal/controlplane"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/render/poolstatus"
	"github.com/imagemode/imagemode/render/renderer"
	. "github.com/imagemode/imagemode/render/rollout"
)

// A worker pool as the reference (OpenShift's Machine Config Operator) leaves it, built from its documented
// behaviour rather than from this project's code:
//
//   - three component configs, one of them an old Ignition spec 2.2 config listing a key twice;
//   - the rendered config the reference wrote: the spec below (its merge: name order, the first config
//     unmerged, spec 2 converted with the repeated key dropped, every file overwrite: true, kernel arguments
//     concatenated, the base images from the ControllerConfig, empty lists as []) named
//     rendered-worker-<MD5 of the reference's salt and this YAML> — the hash computed with Python's hashlib
//     over these bytes, not with this project's code;
//   - the pool pointing at it (spec and status), and three nodes done on it, with the annotations the
//     reference's daemon and drain controller leave.
const (
	adoptedRendered = "rendered-worker-c3defdaef2ed70f98ab706c80cb72bfa"
	adoptedBaseOS   = "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	adoptedExt      = "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:2222222222222222222222222222222222222222222222222222222222222222"
	adoptedSpecYAML = `baseOSExtensionsContainerImage: quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:2222222222222222222222222222222222222222222222222222222222222222
config:
  ignition:
    config:
      replace:
        verification: {}
    proxy: {}
    security:
      tls: {}
    timeouts: {}
    version: 3.5.0
  kernelArguments: {}
  passwd:
    users:
    - name: core
      sshAuthorizedKeys:
      - ssh-ed25519 AAAA one
      - ssh-rsa BBBB two
  storage:
    files:
    - contents:
        source: data:,a
        verification: {}
      group: {}
      mode: 420
      overwrite: true
      path: /etc/kubernetes/a
      user: {}
  systemd:
    units:
    - contents: |
        [Unit]
        Description=kubelet
      enabled: true
      name: kubelet.service
extensions: []
fips: false
kernelArguments:
- nosmt
kernelType: default
osImageURL: quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:1111111111111111111111111111111111111111111111111111111111111111
`
)

func adoptedComponents() []*mcfgv1.MachineConfig {
	worker := func(name, ign string, kargs ...string) *mcfgv1.MachineConfig {
		mc := &mcfgv1.MachineConfig{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{wellknown.RoleLabel: "worker"}},
			Spec:       mcfgv1.MachineConfigSpec{KernelArguments: kargs},
		}
		if ign != "" {
			mc.Spec.Config = runtime.RawExtension{Raw: []byte(ign)}
		}
		return mc
	}
	return []*mcfgv1.MachineConfig{
		worker("00-worker", `{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/kubernetes/a","mode":420,"contents":{"source":"data:,a"}}]},`+
			`"systemd":{"units":[{"name":"kubelet.service","enabled":true,"contents":"[Unit]\nDescription=kubelet\n"}]}}`),
		worker("50-worker-kargs", "", "nosmt"),
		worker("99-worker-ssh", `{"ignition":{"version":"2.2.0"},"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["ssh-ed25519 AAAA one","ssh-ed25519 AAAA one","ssh-rsa BBBB two"]}]}}`),
	}
}

// nodeWrites counts the writes a client makes to Node objects.
func nodeWrites(counter *atomic.Int32) func(*rest.Config, client.Options) (client.Client, error) {
	isNode := func(obj client.Object) bool { _, ok := obj.(*corev1.Node); return ok }
	return func(cfg *rest.Config, opts client.Options) (client.Client, error) {
		c, err := client.NewWithWatch(cfg, opts) // reads still come from the manager's cache (opts.Cache)
		if err != nil {
			return nil, err
		}
		return interceptor.NewClient(c, interceptor.Funcs{
			Create: func(ctx context.Context, cl client.WithWatch, obj client.Object, o ...client.CreateOption) error {
				if isNode(obj) {
					counter.Add(1)
				}
				return cl.Create(ctx, obj, o...)
			},
			Update: func(ctx context.Context, cl client.WithWatch, obj client.Object, o ...client.UpdateOption) error {
				if isNode(obj) {
					counter.Add(1)
				}
				return cl.Update(ctx, obj, o...)
			},
			Patch: func(ctx context.Context, cl client.WithWatch, obj client.Object, p client.Patch, o ...client.PatchOption) error {
				if isNode(obj) {
					counter.Add(1)
				}
				return cl.Patch(ctx, obj, p, o...)
			},
			SubResourceUpdate: func(ctx context.Context, cl client.Client, sub string, obj client.Object, o ...client.SubResourceUpdateOption) error {
				if isNode(obj) {
					counter.Add(1)
				}
				return cl.SubResource(sub).Update(ctx, obj, o...)
			},
			SubResourcePatch: func(ctx context.Context, cl client.Client, sub string, obj client.Object, p client.Patch, o ...client.SubResourcePatchOption) error {
				if isNode(obj) {
					counter.Add(1)
				}
				return cl.SubResource(sub).Patch(ctx, obj, p, o...)
			},
		}), nil
	}
}

// TestAdoptReferencePool hands a pool written by the reference over to this project's render and rollout
// controllers: they must compute the same rendered name, keep the pool on it and leave every node alone
// (zero writes to nodes, counted on the controllers' own client, and the nodes' resourceVersions unchanged).
func TestAdoptReferencePool(t *testing.T) {
	t.Parallel() // its own control plane
	cp := controlplane.Start(t, controlplane.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := cp.Client

	// What the reference left, before our controllers start.
	cc := renderer.NewControllerConfig(adoptedBaseOS, adoptedExt, "4.19.0")
	require.NoError(t, c.Create(ctx, cc))
	var sources []corev1.ObjectReference
	for _, mc := range adoptedComponents() {
		require.NoError(t, c.Create(ctx, mc))
		sources = append(sources, corev1.ObjectReference{APIVersion: mcfgv1.GroupVersion.String(), Kind: "MachineConfig", Name: mc.Name})
	}
	pool := builtInPool("worker")
	pool.Spec.Configuration = mcfgv1.MachineConfigPoolStatusConfiguration{
		ObjectReference: corev1.ObjectReference{Name: adoptedRendered}, Source: sources,
	}
	require.NoError(t, c.Create(ctx, pool))
	var spec mcfgv1.MachineConfigSpec
	require.NoError(t, yaml.Unmarshal([]byte(adoptedSpecYAML), &spec))
	rendered := &mcfgv1.MachineConfig{
		ObjectMeta: metav1.ObjectMeta{Name: adoptedRendered, Annotations: map[string]string{
			// The reference's own version hash: this project's controllers run another version.
			wellknown.GeneratedByControllerVersionAnnotation: "d7a8f1c0b6e4a5f3c2b1a0e9d8c7b6a5f4e3d2c1",
			wellknown.ReleaseImageVersionAnnotation:          "4.19.0",
		}, OwnerReferences: []metav1.OwnerReference{{
			APIVersion: mcfgv1.GroupVersion.String(), Kind: "MachineConfigPool", Name: pool.Name, UID: pool.UID,
			Controller: new(true), BlockOwnerDeletion: new(true),
		}}},
		Spec: spec,
	}
	require.NoError(t, c.Create(ctx, rendered))
	pool.Status = mcfgv1.MachineConfigPoolStatus{
		ObservedGeneration: pool.Generation, Configuration: pool.Spec.Configuration,
		MachineCount: 3, UpdatedMachineCount: 3, ReadyMachineCount: 3,
	}
	require.NoError(t, c.Status().Update(ctx, pool))
	versions := map[string]string{}
	for _, name := range []string{"worker-0", "worker-1", "worker-2"} {
		ann := OnConfig(adoptedRendered)
		ann[wellknown.ReasonAnnotation] = ""
		ann["machineconfiguration.openshift.io/desiredDrain"] = "uncordon-" + adoptedRendered
		ann["machineconfiguration.openshift.io/lastAppliedDrain"] = "uncordon-" + adoptedRendered
		ann["machineconfiguration.openshift.io/controlPlaneTopology"] = "HighlyAvailable"
		n := CreateNode(ctx, t, c, name, map[string]string{"node-role.kubernetes.io/worker": ""}, ann)
		versions[name] = n.ResourceVersion
	}

	// Our controllers take over, writing through a client that counts node writes.
	var writes atomic.Int32
	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{
		Scheme: cp.Scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: new(true)},
		NewClient:  nodeWrites(&writes),
	})
	require.NoError(t, err)
	require.NoError(t, (&renderer.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("render"), Version: "test-v1"}).SetupWithManager(mgr))
	require.NoError(t, (&Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("rollout")}).SetupWithManager(mgr))
	mgrCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	t.Cleanup(func() { stop(); <-done })

	// Both have been over the pool: the render reported success, the rollout its status.
	WaitFor(ctx, t, "both controllers to report on the pool", func(ctx context.Context) (bool, error) {
		p := &mcfgv1.MachineConfigPool{}
		if err := c.Get(ctx, types.NamespacedName{Name: "worker"}, p); err != nil {
			return false, err
		}
		rd := poolstatus.FindCondition(&p.Status, mcfgv1.MachineConfigPoolRenderDegraded)
		upd := poolstatus.FindCondition(&p.Status, mcfgv1.MachineConfigPoolUpdated)
		return rd != nil && rd.Status == corev1.ConditionFalse && upd != nil && upd.Status == corev1.ConditionTrue, nil
	})
	WaitMCP(ctx, t, cp, "worker", "True False False 3 3 3 0")
	time.Sleep(time.Second) // anything either controller would still do to a node happens now

	p := &mcfgv1.MachineConfigPool{}
	require.NoError(t, c.Get(ctx, types.NamespacedName{Name: "worker"}, p))
	assert.Equal(t, adoptedRendered, p.Spec.Configuration.Name, "the same rendered name as the reference's")
	assert.Equal(t, adoptedRendered, p.Status.Configuration.Name)
	var all mcfgv1.MachineConfigList
	require.NoError(t, c.List(ctx, &all))
	for _, mc := range all.Items {
		if mc.Name != adoptedRendered && metav1.GetControllerOf(&mc) != nil {
			t.Errorf("a new rendered config %s was created", mc.Name)
		}
	}
	assert.Zero(t, writes.Load(), "taking the pool over must not write to any node")
	for name, rv := range versions {
		n := &corev1.Node{}
		require.NoError(t, c.Get(ctx, types.NamespacedName{Name: name}, n))
		assert.Equal(t, rv, n.ResourceVersion, "node %s was written", name)
		assert.Equal(t, adoptedRendered, n.Annotations[wellknown.DesiredConfigAnnotation])
		for _, taint := range n.Spec.Taints { // the API server's own not-ready taint of a new node aside
			assert.NotEqual(t, wellknown.UpdateInProgressTaintKey, taint.Key, "node %s", name)
		}
	}
}
