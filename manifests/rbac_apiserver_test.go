package manifests_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	opv1 "github.com/openshift/api/operator/v1"
	operatorv1alpha1 "github.com/openshift/api/operator/v1alpha1"
	authorizationv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/imagemode/imagemode/internal/controlplane"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/manifests"
	"github.com/imagemode/imagemode/render/renderer"
	"github.com/imagemode/imagemode/system"
)

const ns = wellknown.MCONamespace

// access is one question to the API server's authorizer: may sa do verb on group/resource/subresource in
// namespace ("" for cluster-scoped or all namespaces)?
type access struct {
	sa, verb, group, resource, sub, namespace string
	allowed                                   bool
}

func (a access) String() string {
	r := a.resource
	if a.sub != "" {
		r += "/" + a.sub
	}
	if a.group != "" {
		r += "." + a.group
	}
	where := "cluster-wide"
	if a.namespace != "" {
		where = "in " + a.namespace
	}
	return fmt.Sprintf("%s %s %s %s", a.sa, a.verb, r, where)
}

// serviceAccountUser is how the API server sees a pod running as sa.
func serviceAccountUser(sa string) (string, []string) {
	return "system:serviceaccount:" + ns + ":" + sa, []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
}

const (
	mcfg = "machineconfiguration.openshift.io"
	op   = "operator.openshift.io"
	cfg  = "config.openshift.io"
	ctl  = manifests.ControllerServiceAccount
	bld  = manifests.BuilderServiceAccount
	dmn  = manifests.DaemonServiceAccount
)

// accessTable is what each component must and must not be able to do (derived from the code: see
// deploy/README.md). The "default" service account of the namespace gets nothing: it proves RBAC is on.
var accessTable = []access{
	// The controller: the machineconfiguration API, image configuration, nodes, drains.
	{ctl, "list", mcfg, "machineconfigs", "", "", true},
	{ctl, "create", mcfg, "machineconfigs", "", "", true},
	{ctl, "delete", mcfg, "machineconfigs", "", "", true},
	{ctl, "patch", mcfg, "machineconfigpools", "", "", true},
	{ctl, "update", mcfg, "machineconfigpools", "status", "", true},
	{ctl, "delete", mcfg, "machineconfigpools", "", "", false},
	{ctl, "update", mcfg, "machineconfigpools", "finalizers", "", true},
	{ctl, "watch", mcfg, "controllerconfigs", "", "", true},
	{ctl, "update", mcfg, "controllerconfigs", "", "", false},
	{ctl, "patch", mcfg, "machineosconfigs", "status", "", true},
	{ctl, "create", mcfg, "machineosbuilds", "", "", true},
	{ctl, "patch", mcfg, "machineosbuilds", "status", "", true},
	{ctl, "update", mcfg, "machineosbuilds", "finalizers", "", true},
	{ctl, "create", mcfg, "machineconfignodes", "", "", true},
	{ctl, "update", mcfg, "machineconfignodes", "status", "", false},
	{ctl, "patch", op, "machineconfigurations", "status", "", true},
	{ctl, "list", op, "imagecontentsourcepolicies", "", "", true},
	{ctl, "watch", cfg, "imagedigestmirrorsets", "", "", true},
	{ctl, "watch", cfg, "images", "", "", true},
	{ctl, "patch", "", "nodes", "", "", true},
	{ctl, "update", "", "nodes", "", "", true},
	{ctl, "delete", "", "nodes", "", "", false},
	{ctl, "create", "", "nodes", "", "", false},
	{ctl, "list", "", "pods", "", "", true},
	{ctl, "create", "", "pods", "eviction", "default", true},
	{ctl, "delete", "", "pods", "", "default", false},
	{ctl, "create", "", "pods", "", ns, false},
	{ctl, "watch", "", "pods", "", ns, true},
	{ctl, "watch", "", "pods", "", "default", false},
	{ctl, "get", "apps", "daemonsets", "", "kube-system", true},
	{ctl, "create", "", "events", "", "default", true},
	{ctl, "patch", "events.k8s.io", "events", "", "default", true},
	// ... its own namespace only: Jobs, ConfigMaps, Secrets read by name, the lease.
	{ctl, "create", "batch", "jobs", "", ns, true},
	{ctl, "watch", "batch", "jobs", "", ns, true},
	{ctl, "create", "batch", "jobs", "", "default", false},
	{ctl, "list", "batch", "jobs", "", "", false},
	{ctl, "watch", "", "configmaps", "", ns, true},
	{ctl, "delete", "", "configmaps", "", ns, true},
	{ctl, "patch", "", "configmaps", "", ns, true},
	{ctl, "get", "", "configmaps", "", "kube-system", false},
	{ctl, "list", "", "configmaps", "", "", false},
	{ctl, "get", "", "secrets", "", ns, true},
	{ctl, "create", "", "secrets", "", ns, true},
	{ctl, "list", "", "secrets", "", ns, true},
	{ctl, "list", "", "secrets", "", "default", false},
	{ctl, "get", "", "secrets", "", "default", false},
	{ctl, "list", "", "secrets", "", "", false},
	{ctl, "update", "coordination.k8s.io", "leases", "", ns, true},
	{ctl, "create", "coordination.k8s.io", "leases", "", "default", false},
	{ctl, "create", "rbac.authorization.k8s.io", "clusterrolebindings", "", "", false},
	// The builder: its digest and log ConfigMaps, nothing else.
	{bld, "create", "", "configmaps", "", ns, true},
	{bld, "update", "", "configmaps", "", ns, true},
	{bld, "get", "", "configmaps", "", ns, true},
	{bld, "list", "", "configmaps", "", ns, false},
	{bld, "get", "", "configmaps", "", "default", false},
	{bld, "create", "", "configmaps", "", "default", false},
	{bld, "get", "", "secrets", "", ns, false},
	{bld, "list", "", "secrets", "", "", false},
	{bld, "create", "batch", "jobs", "", ns, false},
	{bld, "get", "batch", "jobs", "", ns, false},
	{bld, "get", mcfg, "machineosbuilds", "", "", false},
	{bld, "list", "", "nodes", "", "", false},
	// The daemon: reads its inputs, writes its node and MachineConfigNode; no Secrets, no drains.
	{dmn, "get", "", "nodes", "", "", true},
	{dmn, "watch", "", "nodes", "", "", true},
	{dmn, "patch", "", "nodes", "", "", true},
	{dmn, "delete", "", "nodes", "", "", false},
	{dmn, "list", mcfg, "machineconfigs", "", "", true},
	{dmn, "create", mcfg, "machineconfigs", "", "", false},
	{dmn, "update", mcfg, "machineconfigs", "", "", false},
	{dmn, "get", mcfg, "controllerconfigs", "", "", true},
	{dmn, "watch", op, "machineconfigurations", "", "", true},
	{dmn, "update", mcfg, "machineconfignodes", "status", "", true},
	{dmn, "patch", mcfg, "machineconfignodes", "", "", true},
	{dmn, "create", mcfg, "machineconfignodes", "", "", false},
	{dmn, "update", mcfg, "machineconfigpools", "status", "", false},
	{dmn, "list", mcfg, "machineosbuilds", "", "", false},
	{dmn, "create", "", "events", "", "default", true},
	{dmn, "create", "events.k8s.io", "events", "", "default", true},
	{dmn, "get", "", "secrets", "", ns, false},
	{dmn, "get", "", "secrets", "", "default", false},
	{dmn, "list", "", "secrets", "", "", false},
	{dmn, "watch", "", "secrets", "", "", false},
	{dmn, "create", "", "pods", "eviction", "default", false},
	{dmn, "list", "", "pods", "", "", false},
	{dmn, "delete", "", "pods", "", ns, false},
	{dmn, "get", "", "configmaps", "", ns, false},
	{dmn, "list", "", "configmaps", "", ns, true},
	{dmn, "list", "", "configmaps", "", "default", false},
	// No RBAC for anyone else: with an AlwaysAllow authorizer this row would fail.
	{"default", "get", "", "nodes", "", "", false},
	{"default", "get", "", "configmaps", "", ns, false},
}

// TestDeployOnAPIServer installs manifests/deploy with kubectl apply -k on a real API server (RBAC
// authorization), asks its authorizer the access table, and proves the bindings end to end: the daemon and
// builder identities make real calls, and the real controllers run, with leader election, as the
// controller's service account.
func TestDeployOnAPIServer(t *testing.T) {
	cp := controlplane.Start(t, controlplane.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The CRDs are installed already (by the harness): server-side apply adopts them unchanged.
	if out, err := cp.Kubectl(ctx, nil, "apply", "--server-side", "-k", "deploy"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	sa := &corev1.ServiceAccount{}
	if err := cp.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: dmn}, sa); err != nil {
		t.Fatalf("service account of the daemon not installed: %v", err)
	}

	t.Run("image override", func(t *testing.T) {
		// kustomize edit set image in a copy: the controller, its build pods and the daemon get the new image.
		dir := t.TempDir()
		for _, sub := range []string{"crds", "deploy"} {
			if err := os.CopyFS(filepath.Join(dir, sub), os.DirFS(sub)); err != nil {
				t.Fatal(err)
			}
		}
		k := filepath.Join(dir, "deploy", "kustomization.yaml")
		raw, err := os.ReadFile(k)
		if err != nil {
			t.Fatal(err)
		}
		const entry = "- name: quay.io/imagemode/imagemode\n"
		if !strings.Contains(string(raw), entry) {
			t.Fatalf("kustomization.yaml has no images: entry %q", entry)
		}
		raw = []byte(strings.Replace(string(raw), entry, entry+"  newName: registry.example.com/imagemode\n  newTag: v2\n", 1))
		if err := os.WriteFile(k, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := cp.Kubectl(ctx, nil, "kustomize", filepath.Join(dir, "deploy"))
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if n := strings.Count(out, "registry.example.com/imagemode:v2"); n != 3 || strings.Contains(out, "quay.io/imagemode/imagemode") {
			t.Errorf("overridden image appears %d times, want 3 (controller, IMAGEMODE_IMAGE, daemon), and the default never", n)
		}
	})

	t.Run("authorizer", func(t *testing.T) {
		for _, a := range accessTable {
			user, groups := serviceAccountUser(a.sa)
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: user, Groups: groups,
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.sub, Namespace: a.namespace,
				},
			}}
			got, err := cp.Kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("%s: %v", a, err)
			}
			if got.Status.Allowed != a.allowed {
				t.Errorf("%s: allowed=%v, want %v (%s)", a, got.Status.Allowed, a.allowed, got.Status.Reason)
			}
		}
	})

	t.Run("impersonated calls", func(t *testing.T) {
		daemon := kubernetes.NewForConfigOrDie(impersonate(cp.Config, dmn))
		if _, err := daemon.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("daemon listing nodes: %v", err)
		}
		if _, err := daemon.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("daemon listing secrets in %s: %v, want Forbidden", ns, err)
		}
		builder := kubernetes.NewForConfigOrDie(impersonate(cp.Config, bld))
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "digest-rbac-test"}, Data: map[string]string{"digest": "sha256:0"}}
		if _, err := builder.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Errorf("builder creating its digest ConfigMap in %s: %v", ns, err)
		}
		if _, err := builder.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("builder creating a ConfigMap in default: %v, want Forbidden", err)
		}
	})

	t.Run("controllers as their service account", func(t *testing.T) {
		runControllersAs(ctx, t, cp)
	})
}

// impersonate returns cfg acting as the service account sa of the namespace (the admin may impersonate).
func impersonate(cfg *rest.Config, sa string) *rest.Config {
	out := rest.CopyConfig(cfg)
	user, groups := serviceAccountUser(sa)
	out.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return out
}

// runControllersAs runs the controllers of imagemode-controller as its service account, with leader
// election in the namespace: every kind they watch must sync, and a pool must be rendered and its node
// targeted (writes to configs, pools, nodes and MachineConfigNodes).
func runControllersAs(ctx context.Context, t *testing.T, cp *controlplane.ControlPlane) {
	sys := system.Options{Namespace: ns, Version: "rbac-test", BuilderImage: "example.com/imagemode:test"}
	mgr, err := ctrl.NewManager(impersonate(cp.Config, ctl), system.ManagerOptions(ctrl.Options{
		Scheme:                        cp.Scheme,
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:        "0",
		LeaderElection:                true,
		LeaderElectionID:              "imagemode-controller",
		LeaderElectionNamespace:       ns,
		LeaderElectionReleaseOnCancel: true,
		Controller:                    config.Controller{SkipNameValidation: ptr.To(true), CacheSyncTimeout: 30 * time.Second},
	}, sys))
	if err != nil {
		t.Fatal(err)
	}
	if err := system.AddToManager(mgr, sys); err != nil {
		t.Fatal(err)
	}
	mgrCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("controllers as %s: %v", ctl, err)
		}
	}()

	select {
	case <-mgr.Elected():
	case err := <-done:
		done <- err
		t.Fatalf("manager stopped before being elected: %v", err)
	case <-ctx.Done():
		t.Fatal("not elected: the lease in " + ns + " could not be taken")
	}
	for _, obj := range []client.Object{
		&mcfgv1.MachineConfig{}, &mcfgv1.MachineConfigPool{}, &mcfgv1.ControllerConfig{}, &mcfgv1.MachineOSConfig{},
		&mcfgv1.MachineOSBuild{}, &mcfgv1.MachineConfigNode{}, &opv1.MachineConfiguration{},
		&operatorv1alpha1.ImageContentSourcePolicy{}, &configv1.ImageDigestMirrorSet{}, &configv1.ImageTagMirrorSet{},
		&configv1.Image{}, &corev1.Node{}, &batchv1.Job{}, &corev1.ConfigMap{},
	} {
		syncCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
		_, err := mgr.GetCache().GetInformer(syncCtx, obj)
		cancel()
		if err != nil {
			t.Errorf("watching %T as %s: %v", obj, ctl, err)
		}
	}

	c := cp.Client
	worker := map[string]string{"node-role.kubernetes.io/worker": ""}
	ign, _ := json.Marshal(map[string]any{"ignition": map[string]any{"version": "3.2.0"}})
	for _, o := range []client.Object{
		renderer.NewControllerConfig("quay.io/openshift/rhcos@sha256:base", "quay.io/openshift/ext@sha256:base", "4.19.0"),
		&mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: "00-worker", Labels: map[string]string{wellknown.RoleLabel: "worker"}},
			Spec: mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: ign}}},
		&mcfgv1.MachineConfigPool{ObjectMeta: metav1.ObjectMeta{Name: "worker"}, Spec: mcfgv1.MachineConfigPoolSpec{
			MachineConfigSelector: &metav1.LabelSelector{MatchLabels: map[string]string{wellknown.RoleLabel: "worker"}},
			NodeSelector:          &metav1.LabelSelector{MatchLabels: worker},
		}},
	} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
	// A ready node done with an earlier config: the rollout targets it at the pool's rendered config.
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "worker-0", Labels: worker, Annotations: map[string]string{
		wellknown.CurrentConfigAnnotation: "rendered-worker-old", wellknown.DesiredConfigAnnotation: "rendered-worker-old",
		wellknown.StateAnnotation: wellknown.NodeStateDone,
	}}}
	if err := c.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	if err := c.Status().Update(ctx, node); err != nil {
		t.Fatal(err)
	}
	var rendered string
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		p := &mcfgv1.MachineConfigPool{}
		if err := c.Get(ctx, types.NamespacedName{Name: "worker"}, p); err != nil {
			return false, err
		}
		rendered = p.Spec.Configuration.Name
		n := &corev1.Node{}
		if err := c.Get(ctx, types.NamespacedName{Name: "worker-0"}, n); err != nil {
			return false, err
		}
		return strings.HasPrefix(rendered, wellknown.RenderedPrefix) && n.Annotations[wellknown.DesiredConfigAnnotation] == rendered, nil
	})
	if err != nil {
		t.Fatalf("pool worker not rendered and its node not targeted by the controllers running as %s (rendered %q): %v", ctl, rendered, err)
	}
	if err := c.Get(ctx, types.NamespacedName{Name: rendered}, &mcfgv1.MachineConfig{}); err != nil {
		t.Errorf("rendered config %s: %v", rendered, err)
	}
	if err := c.Get(ctx, types.NamespacedName{Name: "worker-0"}, &mcfgv1.MachineConfigNode{}); err != nil {
		t.Errorf("MachineConfigNode of worker-0: %v", err)
	}
}
