package disruption

import (
	"testing"

	opv1 "github.com/openshift/api/operator/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func specReload(svc string) opv1.NodeDisruptionPolicySpecAction {
	return opv1.NodeDisruptionPolicySpecAction{Type: opv1.ReloadSpecAction, Reload: &opv1.ReloadService{ServiceName: opv1.NodeDisruptionPolicyServiceName(svc)}}
}

func specAction(t opv1.NodeDisruptionPolicySpecActionType) opv1.NodeDisruptionPolicySpecAction {
	return opv1.NodeDisruptionPolicySpecAction{Type: t}
}

// TestDefaultClusterPolicies checks the defaults against the reference release's list, written out here
// entry by entry, and against the 4.19 docs' baseline: every docs entry but the one the release dropped is
// there, with the same actions, in the docs' order.
func TestDefaultClusterPolicies(t *testing.T) {
	t.Parallel()
	crio, kubelet, ca, iri := "crio.service", "kubelet.service", "coreos-update-ca-trust.service", "iri-registry.service"
	want := opv1.NodeDisruptionPolicyClusterStatus{
		Files: []opv1.NodeDisruptionPolicyStatusFile{
			file("/var/lib/kubelet/config.json", action(opv1.NoneStatusAction)),
			file("/etc/machine-config-daemon/no-reboot/containers-gpg.pub", reload(crio)),
			file("/etc/containers/policy.json", reload(crio)),
			file("/etc/containers/registries.conf", action(opv1.SpecialStatusAction)),
			file("/etc/containers/registries.d", reload(crio)),
			file("/etc/crio/policies", reload(crio)),
			file("/etc/nmstate/openshift", action(opv1.NoneStatusAction)),
			file("/etc/pki/ca-trust/source/anchors/openshift-config-user-ca-bundle.crt", restart(ca), restart(crio)),
			file("/etc/kubernetes/credential-providers", restart(kubelet)),
			file("/etc/systemd/system/kubelet.service.d/40-kubelet-crio-image-credential-provider.conf", action(opv1.DaemonReloadStatusAction), restart(kubelet)),
			file("/etc/iri-registry", restart(iri)),
			file("/usr/local/bin/load-registry-image.sh", restart(iri)),
			file("/etc/pki/ca-trust/source/anchors/iri-root-ca.crt", restart(ca)),
		},
		Units: []opv1.NodeDisruptionPolicyStatusUnit{{Name: "iri-registry.service",
			Actions: []opv1.NodeDisruptionPolicyStatusAction{action(opv1.DaemonReloadStatusAction), restart(iri)}}},
		SSHKey: opv1.NodeDisruptionPolicyStatusSSHKey{Actions: []opv1.NodeDisruptionPolicyStatusAction{action(opv1.NoneStatusAction)}},
	}
	d := DefaultClusterPolicies()
	assert.Equal(t, want, d, "the defaults of %s", ReferenceRelease)

	pos := map[string]int{}
	for i, f := range d.Files {
		pos[f.Path] = i
	}
	last := -1
	for _, docs := range docs419Files() {
		i, ok := pos[docs.Path]
		if docs.Path == "/etc/mco/internal-registry-pull-secret.json" {
			assert.False(t, ok, "dropped after 4.19")
			continue
		}
		require.True(t, ok, "docs entry %s missing", docs.Path)
		assert.Equal(t, docs.Actions, d.Files[i].Actions, docs.Path)
		assert.Greater(t, i, last, "%s out of the docs' order", docs.Path)
		last = i
	}

	// Callers may change what they get without changing the defaults.
	d.Files[0].Path = "changed"
	d.Units[0].Actions[0].Type = opv1.RebootStatusAction
	assert.Equal(t, want, DefaultClusterPolicies())
}

func TestMergeClusterPolicies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		spec  opv1.NodeDisruptionPolicyConfig
		check func(t *testing.T, got opv1.NodeDisruptionPolicyClusterStatus)
	}{
		{name: "empty spec gives the defaults",
			check: func(t *testing.T, got opv1.NodeDisruptionPolicyClusterStatus) {
				assert.Equal(t, DefaultClusterPolicies(), got)
			}},
		{name: "docs: registries.conf None replaces the Special default in place",
			spec: opv1.NodeDisruptionPolicyConfig{Files: []opv1.NodeDisruptionPolicySpecFile{
				{Path: "/etc/containers/registries.conf", Actions: []opv1.NodeDisruptionPolicySpecAction{specAction(opv1.NoneSpecAction)}}}},
			check: func(t *testing.T, got opv1.NodeDisruptionPolicyClusterStatus) {
				assert.Len(t, got.Files, len(DefaultClusterPolicies().Files))
				assert.Equal(t, "/etc/containers/registries.conf", got.Files[3].Path)
				assert.Equal(t, []opv1.NodeDisruptionPolicyStatusAction{action(opv1.NoneStatusAction)}, got.Files[3].Actions)
			}},
		{name: "docs: new file paths are appended in order",
			spec: opv1.NodeDisruptionPolicyConfig{Files: []opv1.NodeDisruptionPolicySpecFile{
				{Path: "/etc/chrony.conf", Actions: []opv1.NodeDisruptionPolicySpecAction{specReload("chronyd.service")}},
				{Path: "/var/run", Actions: []opv1.NodeDisruptionPolicySpecAction{specAction(opv1.NoneSpecAction)}}}},
			check: func(t *testing.T, got opv1.NodeDisruptionPolicyClusterStatus) {
				n := len(DefaultClusterPolicies().Files)
				require.Len(t, got.Files, n+2)
				assert.Equal(t, file("/etc/chrony.conf", reload("chronyd.service")), got.Files[n])
				assert.Equal(t, file("/var/run", action(opv1.NoneStatusAction)), got.Files[n+1])
			}},
		{name: "docs: unit policy with drain, reload, daemon-reload, restart",
			spec: opv1.NodeDisruptionPolicyConfig{Units: []opv1.NodeDisruptionPolicySpecUnit{{Name: "auditd.service", Actions: []opv1.NodeDisruptionPolicySpecAction{
				specAction(opv1.DrainSpecAction), specReload("crio.service"), specAction(opv1.DaemonReloadSpecAction),
				{Type: opv1.RestartSpecAction, Restart: &opv1.RestartService{ServiceName: "crio.service"}}}}}},
			check: func(t *testing.T, got opv1.NodeDisruptionPolicyClusterStatus) {
				require.Len(t, got.Units, 2, "the default unit, then the user's")
				assert.Equal(t, opv1.NodeDisruptionPolicyServiceName("iri-registry.service"), got.Units[0].Name)
				assert.Equal(t, opv1.NodeDisruptionPolicyServiceName("auditd.service"), got.Units[1].Name)
				assert.Equal(t, []opv1.NodeDisruptionPolicyStatusAction{action(opv1.DrainStatusAction), reload("crio.service"),
					action(opv1.DaemonReloadStatusAction), restart("crio.service")}, got.Units[1].Actions)
			}},
		{name: "a user unit policy for a default unit replaces it in place; new ones follow in the user's order",
			spec: opv1.NodeDisruptionPolicyConfig{Units: []opv1.NodeDisruptionPolicySpecUnit{
				{Name: "b.service", Actions: []opv1.NodeDisruptionPolicySpecAction{specAction(opv1.DrainSpecAction)}},
				{Name: "iri-registry.service", Actions: []opv1.NodeDisruptionPolicySpecAction{specAction(opv1.NoneSpecAction)}},
				{Name: "a.service", Actions: []opv1.NodeDisruptionPolicySpecAction{specAction(opv1.NoneSpecAction)}}}},
			check: func(t *testing.T, got opv1.NodeDisruptionPolicyClusterStatus) {
				require.Len(t, got.Units, 3)
				assert.Equal(t, opv1.NodeDisruptionPolicyStatusUnit{Name: "iri-registry.service",
					Actions: []opv1.NodeDisruptionPolicyStatusAction{action(opv1.NoneStatusAction)}}, got.Units[0])
				assert.Equal(t, opv1.NodeDisruptionPolicyServiceName("b.service"), got.Units[1].Name)
				assert.Equal(t, opv1.NodeDisruptionPolicyServiceName("a.service"), got.Units[2].Name)
			}},
		{name: "a later unit policy for the same name replaces the earlier",
			spec: opv1.NodeDisruptionPolicyConfig{Units: []opv1.NodeDisruptionPolicySpecUnit{
				{Name: "a.service", Actions: []opv1.NodeDisruptionPolicySpecAction{specAction(opv1.DrainSpecAction)}},
				{Name: "a.service", Actions: []opv1.NodeDisruptionPolicySpecAction{specAction(opv1.NoneSpecAction)}}}},
			check: func(t *testing.T, got opv1.NodeDisruptionPolicyClusterStatus) {
				require.Len(t, got.Units, 2)
				assert.Equal(t, opv1.NodeDisruptionPolicyStatusUnit{Name: "a.service",
					Actions: []opv1.NodeDisruptionPolicyStatusAction{action(opv1.NoneStatusAction)}}, got.Units[1])
			}},
		{name: "a user file policy for a later default path replaces it in place",
			spec: opv1.NodeDisruptionPolicyConfig{Files: []opv1.NodeDisruptionPolicySpecFile{
				{Path: "/etc/new", Actions: []opv1.NodeDisruptionPolicySpecAction{specAction(opv1.NoneSpecAction)}},
				{Path: "/etc/kubernetes/credential-providers", Actions: []opv1.NodeDisruptionPolicySpecAction{specAction(opv1.DrainSpecAction)}}}},
			check: func(t *testing.T, got opv1.NodeDisruptionPolicyClusterStatus) {
				n := len(DefaultClusterPolicies().Files)
				require.Len(t, got.Files, n+1)
				assert.Equal(t, file("/etc/kubernetes/credential-providers", action(opv1.DrainStatusAction)), got.Files[8])
				assert.Equal(t, "/etc/new", got.Files[n].Path)
			}},
		{name: "docs: ssh key actions replace the default",
			spec: opv1.NodeDisruptionPolicyConfig{SSHKey: opv1.NodeDisruptionPolicySpecSSHKey{Actions: []opv1.NodeDisruptionPolicySpecAction{
				specAction(opv1.DrainSpecAction), specReload("crio.service")}}},
			check: func(t *testing.T, got opv1.NodeDisruptionPolicyClusterStatus) {
				assert.Equal(t, []opv1.NodeDisruptionPolicyStatusAction{action(opv1.DrainStatusAction), reload("crio.service")}, got.SSHKey.Actions)
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.check(t, MergeClusterPolicies(tc.spec))
		})
	}
}
