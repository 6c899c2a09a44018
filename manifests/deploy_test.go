package manifests_test

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/imagemode/imagemode/builder/jobs"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/manifests"
)

// deployObjects returns the embedded deployment objects by kind, then name.
func deployObjects(t *testing.T) map[string]map[string]*unstructured.Unstructured {
	t.Helper()
	objs, err := manifests.Deploy()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		if out[o.GetKind()] == nil {
			out[o.GetKind()] = map[string]*unstructured.Unstructured{}
		}
		if _, dup := out[o.GetKind()][o.GetName()]; dup {
			t.Errorf("%s %s defined twice", o.GetKind(), o.GetName())
		}
		out[o.GetKind()][o.GetName()] = o
	}
	return out
}

func convert[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, out, true); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return out
}

// kustomizationResources reads the resources list of dir's kustomization.yaml.
func kustomizationResources(t *testing.T, dir string) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(raw, &k); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v", dir, err)
	}
	return k.Resources
}

// yamlFiles lists dir's files matching pattern, kustomization.yaml excluded.
func yamlFiles(t *testing.T, dir, pattern string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range paths {
		if filepath.Base(p) != "kustomization.yaml" {
			out = append(out, filepath.Base(p))
		}
	}
	sort.Strings(out)
	return out
}

// TestKustomizationsListEveryFile keeps kubectl apply -k, the embedded manifests and the files on disk in step:
// a file added to deploy/ or crds/ (hack/update-crds.sh) must be listed, or the install would miss it.
func TestKustomizationsListEveryFile(t *testing.T) {
	crds := kustomizationResources(t, "crds")
	sort.Strings(crds)
	if want := yamlFiles(t, "crds", "*.crd.yaml"); !slices.Equal(crds, want) {
		t.Errorf("crds/kustomization.yaml lists %v, want every CRD file %v", crds, want)
	}
	deploy := kustomizationResources(t, "deploy")
	if !slices.Contains(deploy, "../crds") {
		t.Errorf("deploy/kustomization.yaml does not install ../crds: %v", deploy)
	}
	files := slices.DeleteFunc(slices.Clone(deploy), func(s string) bool { return s == "../crds" })
	sort.Strings(files)
	if want := yamlFiles(t, "deploy", "*.yaml"); !slices.Equal(files, want) {
		t.Errorf("deploy/kustomization.yaml lists %v, want every manifest %v", files, want)
	}
}

// TestRuleProblems checks the static RBAC check itself: it must catch wildcards and cluster-wide secrets.
func TestRuleProblems(t *testing.T) {
	tests := []struct {
		name string
		kind string
		rule rbacv1.PolicyRule
		want []string
	}{
		{name: "explicit", kind: "ClusterRole", rule: rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get"}}},
		{name: "namespaced secrets", kind: "Role", rule: rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}}},
		{name: "wildcard verb", kind: "Role", rule: rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"*"}},
			want: []string{"verbs has a wildcard"}},
		{name: "wildcard resource and group", kind: "Role", rule: rbacv1.PolicyRule{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"get"}},
			want: []string{"apiGroups has a wildcard", "resources has a wildcard"}},
		{name: "subresource wildcard", kind: "Role", rule: rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods/*"}, Verbs: []string{"get"}},
			want: []string{"resources has a wildcard"}},
		{name: "cluster-wide secrets", kind: "ClusterRole", rule: rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}},
			want: []string{"secrets granted cluster-wide"}},
		{name: "no verbs", kind: "Role", rule: rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}},
			want: []string{"verbs empty"}},
		{name: "escalation verb", kind: "ClusterRole", rule: rbacv1.PolicyRule{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"clusterroles"}, Verbs: []string{"escalate"}},
			want: []string{`verb "escalate" not allowed`}},
		{name: "non-resource URL", kind: "ClusterRole", rule: rbacv1.PolicyRule{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}},
			want: []string{"apiGroups empty", "resources empty", "nonResourceURLs granted"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ruleProblems(tc.kind, tc.rule); !slices.Equal(got, tc.want) {
				t.Errorf("ruleProblems = %q, want %q", got, tc.want)
			}
		})
	}
}

// ruleProblems says what is wrong with one rule of a Role or ClusterRole: every rule names its API groups,
// resources and verbs explicitly (no "*"), grants no escalation verbs and no non-resource URLs, and a
// ClusterRole (bound cluster-wide here) never grants secrets.
func ruleProblems(kind string, r rbacv1.PolicyRule) []string {
	var out []string
	for _, f := range []struct {
		name   string
		values []string
	}{{"apiGroups", r.APIGroups}, {"resources", r.Resources}, {"verbs", r.Verbs}} {
		if len(f.values) == 0 {
			out = append(out, f.name+" empty")
			continue
		}
		if slices.ContainsFunc(f.values, func(v string) bool { return strings.Contains(v, "*") }) {
			out = append(out, f.name+" has a wildcard")
		}
	}
	for _, v := range r.Verbs {
		if slices.Contains([]string{"escalate", "bind", "impersonate", "deletecollection"}, v) {
			out = append(out, `verb "`+v+`" not allowed`)
		}
	}
	if len(r.NonResourceURLs) > 0 {
		out = append(out, "nonResourceURLs granted")
	}
	if kind == "ClusterRole" && slices.ContainsFunc(r.Resources, func(res string) bool {
		return res == "secrets" || strings.HasPrefix(res, "secrets/")
	}) {
		out = append(out, "secrets granted cluster-wide")
	}
	return out
}

// TestDeployRBACIsExplicit runs ruleProblems on every rule, and checks that every binding names an existing
// role and a service account of the deployment.
func TestDeployRBACIsExplicit(t *testing.T) {
	objs := deployObjects(t)
	rules := 0
	for _, kind := range []string{"ClusterRole", "Role"} {
		for name, u := range objs[kind] {
			var role *rbacv1.ClusterRole
			if kind == "Role" {
				r := convert[rbacv1.Role](t, u)
				if r.Namespace != wellknown.MCONamespace {
					t.Errorf("Role %s in namespace %q, want %s", name, r.Namespace, wellknown.MCONamespace)
				}
				role = &rbacv1.ClusterRole{Rules: r.Rules}
			} else {
				role = convert[rbacv1.ClusterRole](t, u)
				if role.AggregationRule != nil {
					t.Errorf("ClusterRole %s aggregates other roles", name)
				}
			}
			for i, r := range role.Rules {
				rules++
				for _, p := range ruleProblems(kind, r) {
					t.Errorf("%s %s rules[%d]: %s", kind, name, i, p)
				}
			}
		}
	}
	if rules == 0 {
		t.Fatal("no RBAC rules found")
	}
	sas := objs["ServiceAccount"]
	for _, want := range []string{manifests.ControllerServiceAccount, manifests.BuilderServiceAccount, manifests.DaemonServiceAccount} {
		if sas[want] == nil || sas[want].GetNamespace() != wellknown.MCONamespace {
			t.Errorf("service account %s/%s missing", wellknown.MCONamespace, want)
		}
	}
	for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
		for name, u := range objs[kind] {
			b := convert[rbacv1.RoleBinding](t, u)
			if objs[b.RoleRef.Kind][b.RoleRef.Name] == nil {
				t.Errorf("%s %s: roleRef %s %s is not in the deployment", kind, name, b.RoleRef.Kind, b.RoleRef.Name)
			}
			for _, s := range b.Subjects {
				if s.Kind != rbacv1.ServiceAccountKind || s.Namespace != wellknown.MCONamespace || sas[s.Name] == nil {
					t.Errorf("%s %s: subject %s %s/%s is not one of the deployment's service accounts", kind, name, s.Kind, s.Namespace, s.Name)
				}
			}
		}
	}
}

// TestDeployWorkloads checks what the controller and the daemon are run with.
func TestDeployWorkloads(t *testing.T) {
	if manifests.BuilderServiceAccount != jobs.ServiceAccount {
		t.Errorf("BuilderServiceAccount %q, but build Jobs run as %q", manifests.BuilderServiceAccount, jobs.ServiceAccount)
	}
	objs := deployObjects(t)
	if objs["Namespace"][wellknown.MCONamespace] == nil {
		t.Errorf("namespace %s missing", wellknown.MCONamespace)
	}

	u := objs["Deployment"]["imagemode-controller"]
	if u == nil {
		t.Fatal("Deployment imagemode-controller missing")
	}
	d := convert[appsv1.Deployment](t, u)
	spec := d.Spec.Template.Spec
	if d.Namespace != wellknown.MCONamespace || spec.ServiceAccountName != manifests.ControllerServiceAccount {
		t.Errorf("controller runs in %s as %s", d.Namespace, spec.ServiceAccountName)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("controller replicas %v, want 1", d.Spec.Replicas)
	}
	c := spec.Containers[0]
	for _, arg := range []string{"--leader-elect", "--namespace=" + wellknown.MCONamespace, "--builder-image=$(IMAGEMODE_IMAGE)"} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("controller args %v lack %s", c.Args, arg)
		}
	}
	if i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "IMAGEMODE_IMAGE" }); i < 0 || c.Env[i].Value != c.Image {
		t.Errorf("controller's IMAGEMODE_IMAGE is not its own image %s", c.Image)
	}
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("controller must run as a non-root user: %+v", psc)
	}
	if c.SecurityContext == nil || c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged ||
		c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
		t.Errorf("controller container must not be privileged nor escalate: %+v", c.SecurityContext)
	}
	if c.LivenessProbe == nil || c.ReadinessProbe == nil || c.Resources.Requests.Memory().IsZero() {
		t.Error("controller needs probes and resource requests")
	}

	u = objs["DaemonSet"]["imagemode-daemon"]
	if u == nil {
		t.Fatal("DaemonSet imagemode-daemon missing")
	}
	ds := convert[appsv1.DaemonSet](t, u)
	spec = ds.Spec.Template.Spec
	if ds.Namespace != wellknown.MCONamespace || spec.ServiceAccountName != manifests.DaemonServiceAccount {
		t.Errorf("daemon runs in %s as %s", ds.Namespace, spec.ServiceAccountName)
	}
	if !spec.HostPID || spec.NodeSelector["kubernetes.io/os"] != "linux" {
		t.Errorf("daemon: hostPID %v, nodeSelector %v", spec.HostPID, spec.NodeSelector)
	}
	if !slices.ContainsFunc(spec.Tolerations, func(tol corev1.Toleration) bool {
		return tol.Key == "" && tol.Operator == corev1.TolerationOpExists && tol.Effect == ""
	}) {
		t.Errorf("daemon must tolerate every taint: %v", spec.Tolerations)
	}
	c = spec.Containers[0]
	if c.SecurityContext == nil || c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged {
		t.Error("daemon container must be privileged")
	}
	if !slices.Contains(c.Args, "--node-name=$(NODE_NAME)") || !slices.Contains(c.Args, "--root-mount=/rootfs") {
		t.Errorf("daemon args %v", c.Args)
	}
	if i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "NODE_NAME" }); i < 0 ||
		c.Env[i].ValueFrom == nil || c.Env[i].ValueFrom.FieldRef == nil || c.Env[i].ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		t.Error("daemon needs NODE_NAME from spec.nodeName")
	}
	root := ""
	for _, m := range c.VolumeMounts {
		if m.MountPath == "/rootfs" {
			root = m.Name
		}
	}
	if i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == root }); root == "" || i < 0 ||
		spec.Volumes[i].HostPath == nil || spec.Volumes[i].HostPath.Path != "/" {
		t.Error("daemon must mount the host's / at /rootfs")
	}
}
