package daemon

import (
	"strings"
	"testing"

	opv1 "github.com/openshift/api/operator/v1"
	"github.com/stretchr/testify/assert"

	"github.com/imagemode/imagemode/render/disruption"
)

var (
	none         = Action{Type: ActionNone}
	reboot       = Action{Type: ActionReboot}
	drain        = Action{Type: ActionDrain}
	daemonReload = Action{Type: ActionDaemonReload}
)

func reloadA(s string) Action  { return Action{Type: ActionReload, Service: s} }
func restartA(s string) Action { return Action{Type: ActionRestart, Service: s} }

func statusReload(s string) opv1.NodeDisruptionPolicyStatusAction {
	return opv1.NodeDisruptionPolicyStatusAction{Type: opv1.ReloadStatusAction, Reload: &opv1.ReloadService{ServiceName: opv1.NodeDisruptionPolicyServiceName(s)}}
}

func statusRestart(s string) opv1.NodeDisruptionPolicyStatusAction {
	return opv1.NodeDisruptionPolicyStatusAction{Type: opv1.RestartStatusAction, Restart: &opv1.RestartService{ServiceName: opv1.NodeDisruptionPolicyServiceName(s)}}
}

func statusAction(t opv1.NodeDisruptionPolicyStatusActionType) opv1.NodeDisruptionPolicyStatusAction {
	return opv1.NodeDisruptionPolicyStatusAction{Type: t}
}

// registries.conf contents for the Special action: adding a digest-only mirror is safe, removing a registry
// is not.
const (
	regsBase = `unqualified-search-registries = ["registry.access.redhat.com"]

[[registry]]
  location = "registry.redhat.io"
`
	regsSafe = regsBase + `
  [[registry.mirror]]
    location = "mirror.example.com"
    pull-from-mirror = "digest-only"
`
	regsUnsafe = `unqualified-search-registries = ["registry.access.redhat.com"]
`
)

func changedFiles(paths ...string) *ConfigDiff {
	return &ConfigDiff{Files: PathChanges{Changed: paths}}
}

// TestActionsDefaultPolicies checks the action of a change to every default policy path, and that the table
// covers every one of them.
func TestActionsDefaultPolicies(t *testing.T) {
	t.Parallel()
	crio := CRIOService
	tests := []struct {
		name string
		path string
		want []Action
	}{
		{name: "kubelet pull secret", path: "/var/lib/kubelet/config.json", want: []Action{none}},
		{name: "containers gpg key", path: "/etc/machine-config-daemon/no-reboot/containers-gpg.pub", want: []Action{reloadA(crio)}},
		{name: "policy.json", path: "/etc/containers/policy.json", want: []Action{reloadA(crio)}},
		{name: "registries.conf (safe change)", path: "/etc/containers/registries.conf", want: []Action{reloadA(crio)}},
		{name: "registries.d", path: "/etc/containers/registries.d", want: []Action{reloadA(crio)}},
		{name: "nmstate", path: "/etc/nmstate/openshift", want: []Action{none}},
		{
			name: "user CA bundle", path: "/etc/pki/ca-trust/source/anchors/openshift-config-user-ca-bundle.crt",
			want: []Action{restartA("coreos-update-ca-trust.service"), restartA(crio)},
		},
		{name: "crio policies", path: "/etc/crio/policies", want: []Action{reloadA(crio)}},
		{name: "credential providers", path: "/etc/kubernetes/credential-providers", want: []Action{restartA("kubelet.service")}},
		{
			name: "kubelet credential provider drop-in", path: "/etc/systemd/system/kubelet.service.d/40-kubelet-crio-image-credential-provider.conf",
			want: []Action{daemonReload, restartA("kubelet.service")},
		},
		{name: "internal release image registry config", path: "/etc/iri-registry/config.yml", want: []Action{restartA("iri-registry.service")}},
		{name: "internal release image registry loader", path: "/usr/local/bin/load-registry-image.sh", want: []Action{restartA("iri-registry.service")}},
		{name: "internal release image registry CA", path: "/etc/pki/ca-trust/source/anchors/iri-root-ca.crt", want: []Action{restartA("coreos-update-ca-trust.service")}},
		// The reference release has no default policy for it any more (the daemon keeps it from the
		// ControllerConfig), so a MachineConfig that writes it reboots.
		{name: "internal registry pull secret (no default)", path: "/etc/mco/internal-registry-pull-secret.json", want: []Action{reboot}},
	}
	defaults := disruption.DefaultClusterPolicies()
	for _, f := range defaults.Files {
		covered := false
		for _, tc := range tests {
			covered = covered || tc.path == f.Path || strings.HasPrefix(tc.path, f.Path+"/")
		}
		assert.True(t, covered, "default policy path %s has no test", f.Path)
	}
	for _, u := range defaults.Units {
		assert.Equal(t, []Action{daemonReload, restartA(string(u.Name))},
			Actions(&ConfigDiff{Units: PathChanges{Changed: []string{string(u.Name)}}}, defaults, nil, nil), "default unit %s", u.Name)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, Actions(changedFiles(tc.path), defaults, []byte(regsBase), []byte(regsSafe)))
		})
	}
}

func TestActions(t *testing.T) {
	t.Parallel()
	defaults := disruption.DefaultClusterPolicies()
	custom := disruption.DefaultClusterPolicies()
	custom.Files = append(custom.Files,
		opv1.NodeDisruptionPolicyStatusFile{Path: "/etc/foo", Actions: []opv1.NodeDisruptionPolicyStatusAction{statusRestart("foo.service")}},
		opv1.NodeDisruptionPolicyStatusFile{Path: "/etc/foo/deep/", Actions: []opv1.NodeDisruptionPolicyStatusAction{statusReload("deep.service")}},
		opv1.NodeDisruptionPolicyStatusFile{Path: "/etc/drain", Actions: []opv1.NodeDisruptionPolicyStatusAction{statusAction(opv1.DrainStatusAction), statusReload("b.service")}},
		opv1.NodeDisruptionPolicyStatusFile{Path: "/etc/reboot", Actions: []opv1.NodeDisruptionPolicyStatusAction{statusAction(opv1.RebootStatusAction)}},
		opv1.NodeDisruptionPolicyStatusFile{Path: "/etc/crio-reload", Actions: []opv1.NodeDisruptionPolicyStatusAction{statusReload(CRIOService)}},
		opv1.NodeDisruptionPolicyStatusFile{Path: "/etc/unknown-type", Actions: []opv1.NodeDisruptionPolicyStatusAction{statusAction("Explode")}},
	)
	custom.Units = []opv1.NodeDisruptionPolicyStatusUnit{
		{Name: "a.service", Actions: []opv1.NodeDisruptionPolicyStatusAction{statusAction(opv1.DaemonReloadStatusAction), statusRestart("a.service")}},
		{Name: "quiet.service", Actions: []opv1.NodeDisruptionPolicyStatusAction{statusAction(opv1.NoneStatusAction)}},
	}
	custom.SSHKey.Actions = []opv1.NodeDisruptionPolicyStatusAction{statusRestart("sshd.service")}

	tests := []struct {
		name     string
		diff     *ConfigDiff
		policies opv1.NodeDisruptionPolicyClusterStatus
		old, new string
		want     []Action
	}{
		{name: "nil diff", want: []Action{none}},
		{name: "empty diff", diff: &ConfigDiff{}, want: []Action{none}},
		{name: "os image", diff: &ConfigDiff{OSImageURL: true, Files: PathChanges{Changed: []string{"/var/lib/kubelet/config.json"}}}, want: []Action{reboot}},
		{name: "kernel arguments", diff: &ConfigDiff{KernelArguments: true}, want: []Action{reboot}},
		{name: "kernel type", diff: &ConfigDiff{KernelType: true}, want: []Action{reboot}},
		{name: "extensions", diff: &ConfigDiff{Extensions: true}, want: []Action{reboot}},
		{name: "fips", diff: &ConfigDiff{FIPS: true}, want: []Action{reboot}},
		{name: "file without policy", diff: changedFiles("/etc/other"), policies: defaults, want: []Action{reboot}},
		{name: "file below a directory policy", diff: changedFiles("/etc/containers/registries.d/x.yaml"), policies: defaults, want: []Action{reloadA(CRIOService)}},
		{name: "unclean path is cleaned", diff: changedFiles("/etc/containers//registries.d/./x.yaml"), policies: defaults, want: []Action{reloadA(CRIOService)}},
		{name: "sibling directory is not covered", diff: changedFiles("/etc/containers/registries.d.bak/x"), policies: defaults, want: []Action{reboot}},
		{name: "sibling /etc/foobar of /etc/foo", diff: changedFiles("/etc/foobar"), policies: custom, want: []Action{reboot}},
		{name: "exact /etc/foo", diff: changedFiles("/etc/foo"), policies: custom, want: []Action{restartA("foo.service")}},
		{name: "below /etc/foo", diff: changedFiles("/etc/foo/bar"), policies: custom, want: []Action{restartA("foo.service")}},
		{name: "longest prefix wins", diff: changedFiles("/etc/foo/deep/x"), policies: custom, want: []Action{reloadA("deep.service")}},
		{name: "policy path with trailing slash matches itself", diff: changedFiles("/etc/foo/deep"), policies: custom, want: []Action{reloadA("deep.service")}},
		{
			name: "added and removed files count too", diff: &ConfigDiff{Files: PathChanges{Added: []string{"/etc/foo/a"}, Removed: []string{"/etc/nmstate/openshift/x"}}},
			policies: custom, want: []Action{restartA("foo.service")},
		},
		{name: "one unknown file among known ones reboots", diff: changedFiles("/etc/foo", "/etc/zzz"), policies: custom, want: []Action{reboot}},
		{name: "reboot policy wins alone", diff: changedFiles("/etc/foo", "/etc/reboot", "/etc/drain"), policies: custom, want: []Action{reboot}},
		{name: "unknown action type reboots", diff: changedFiles("/etc/unknown-type"), policies: custom, want: []Action{reboot}},
		{name: "only none", diff: changedFiles("/var/lib/kubelet/config.json", "/etc/nmstate/openshift/a"), policies: defaults, want: []Action{none}},
		{name: "none with others drops none", diff: changedFiles("/var/lib/kubelet/config.json", "/etc/containers/policy.json"), policies: defaults, want: []Action{reloadA(CRIOService)}},
		{
			name: "duplicates removed", diff: changedFiles("/etc/containers/policy.json", "/etc/containers/registries.d/a", "/etc/crio/policies/b"),
			policies: defaults, want: []Action{reloadA(CRIOService)},
		},
		{
			name: "reload dropped when the service restarts", diff: changedFiles("/etc/containers/policy.json", "/etc/pki/ca-trust/source/anchors/openshift-config-user-ca-bundle.crt"),
			policies: defaults, want: []Action{restartA("coreos-update-ca-trust.service"), restartA(CRIOService)},
		},
		{
			name: "drain and daemon-reload first, services in first-met order", diff: &ConfigDiff{
				Files: PathChanges{Changed: []string{"/etc/drain", "/etc/foo"}}, Units: PathChanges{Added: []string{"a.service"}},
			},
			policies: custom, want: []Action{drain, daemonReload, reloadA("b.service"), restartA("foo.service"), restartA("a.service")},
		},
		{name: "unit by exact name", diff: &ConfigDiff{Units: PathChanges{Changed: []string{"a.service"}}}, policies: custom, want: []Action{daemonReload, restartA("a.service")}},
		{name: "unit none", diff: &ConfigDiff{Units: PathChanges{Removed: []string{"quiet.service"}}}, policies: custom, want: []Action{none}},
		{name: "unknown unit reboots", diff: &ConfigDiff{Units: PathChanges{Changed: []string{"a.service.d"}}}, policies: custom, want: []Action{reboot}},
		{name: "ssh keys default none", diff: &ConfigDiff{SSHKeys: true}, policies: defaults, want: []Action{none}},
		{name: "password hash takes ssh actions", diff: &ConfigDiff{PasswordHash: true}, policies: custom, want: []Action{restartA("sshd.service")}},
		{name: "ssh with files", diff: &ConfigDiff{SSHKeys: true, Files: PathChanges{Changed: []string{"/etc/foo"}}}, policies: custom, want: []Action{restartA("foo.service"), restartA("sshd.service")}},
		// registries.conf safe/unsafe matrix.
		{name: "registries safe", diff: changedFiles(RegistriesConfPath), policies: defaults, old: regsBase, new: regsSafe, want: []Action{reloadA(CRIOService)}},
		{name: "registries unchanged content", diff: changedFiles(RegistriesConfPath), policies: defaults, old: regsBase, new: regsBase, want: []Action{reloadA(CRIOService)}},
		{name: "registries unsafe", diff: changedFiles(RegistriesConfPath), policies: defaults, old: regsBase, new: regsUnsafe, want: []Action{drain, reloadA(CRIOService)}},
		{name: "registries unparsable counts as unsafe", diff: changedFiles(RegistriesConfPath), policies: defaults, old: regsBase, new: "[[registry", want: []Action{drain, reloadA(CRIOService)}},
		{name: "registries file added (empty old)", diff: &ConfigDiff{Files: PathChanges{Added: []string{RegistriesConfPath}}}, policies: defaults, new: regsBase, want: []Action{drain, reloadA(CRIOService)}},
		{
			name: "registries safe with another crio reload is one reload", diff: changedFiles(RegistriesConfPath, "/etc/crio-reload"),
			policies: custom, old: regsBase, new: regsSafe, want: []Action{reloadA(CRIOService)},
		},
		{
			name: "registries unsafe with a restart of crio", diff: changedFiles(RegistriesConfPath, "/etc/pki/ca-trust/source/anchors/openshift-config-user-ca-bundle.crt"),
			policies: defaults, old: regsBase, new: regsUnsafe, want: []Action{drain, restartA("coreos-update-ca-trust.service"), restartA(CRIOService)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := Actions(tc.diff, tc.policies, []byte(tc.old), []byte(tc.new))
			assert.Equal(t, tc.want, got)
			// The same inputs always give the same actions.
			assert.Equal(t, got, Actions(tc.diff, tc.policies, []byte(tc.old), []byte(tc.new)))
		})
	}
}

func TestNeedsDrain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		actions []Action
		want    bool
	}{
		{name: "none", actions: []Action{none}},
		{name: "empty"},
		{name: "reboot", actions: []Action{reboot}, want: true},
		{name: "drain and reload", actions: []Action{drain, reloadA(CRIOService)}, want: true},
		{name: "restarts only", actions: []Action{daemonReload, restartA("a.service"), reloadA("b.service")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, NeedsDrain(tc.actions))
		})
	}
}

func TestActionString(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "Restart crio.service", restartA(CRIOService).String())
	assert.Equal(t, "Reboot", reboot.String())
}
