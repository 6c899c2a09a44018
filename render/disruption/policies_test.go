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

func TestDefaultClusterPoliciesMatchDocs(t *testing.T) {
	d := DefaultClusterPolicies()
	// The first eight files are, in order, the ones the 4.19 docs show in MachineConfiguration status.
	docs := []string{
		"/etc/mco/internal-registry-pull-secret.json", "/var/lib/kubelet/config.json",
		"/etc/machine-config-daemon/no-reboot/containers-gpg.pub", "/etc/containers/policy.json",
		"/etc/containers/registries.conf", "/etc/containers/registries.d", "/etc/nmstate/openshift",
		"/etc/pki/ca-trust/source/anchors/openshift-config-user-ca-bundle.crt",
	}
	require.GreaterOrEqual(t, len(d.Files), len(docs))
	for i, p := range docs {
		assert.Equal(t, p, d.Files[i].Path, "file %d", i)
	}
	assert.Equal(t, opv1.SpecialStatusAction, d.Files[4].Actions[0].Type, "registries.conf is Special")
	assert.Equal(t, []opv1.NodeDisruptionPolicyStatusAction{restart("coreos-update-ca-trust.service"), restart("crio.service")}, d.Files[7].Actions)
	assert.Equal(t, []opv1.NodeDisruptionPolicyStatusAction{action(opv1.NoneStatusAction)}, d.SSHKey.Actions)
	assert.Empty(t, d.Units)
	// Callers may change what they get without changing the defaults.
	d.Files[0].Path = "changed"
	assert.Equal(t, docs[0], DefaultClusterPolicies().Files[0].Path)
}

func TestMergeClusterPolicies(t *testing.T) {
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
				assert.Equal(t, "/etc/containers/registries.conf", got.Files[4].Path)
				assert.Equal(t, []opv1.NodeDisruptionPolicyStatusAction{action(opv1.NoneStatusAction)}, got.Files[4].Actions)
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
				require.Len(t, got.Units, 1)
				assert.Equal(t, opv1.NodeDisruptionPolicyServiceName("auditd.service"), got.Units[0].Name)
				assert.Equal(t, []opv1.NodeDisruptionPolicyStatusAction{action(opv1.DrainStatusAction), reload("crio.service"),
					action(opv1.DaemonReloadStatusAction), restart("crio.service")}, got.Units[0].Actions)
			}},
		{name: "a later unit policy for the same name replaces the earlier",
			spec: opv1.NodeDisruptionPolicyConfig{Units: []opv1.NodeDisruptionPolicySpecUnit{
				{Name: "a.service", Actions: []opv1.NodeDisruptionPolicySpecAction{specAction(opv1.DrainSpecAction)}},
				{Name: "a.service", Actions: []opv1.NodeDisruptionPolicySpecAction{specAction(opv1.NoneSpecAction)}}}},
			check: func(t *testing.T, got opv1.NodeDisruptionPolicyClusterStatus) {
				require.Len(t, got.Units, 1)
				assert.Equal(t, opv1.NoneStatusAction, got.Units[0].Actions[0].Type)
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
			tc.check(t, MergeClusterPolicies(tc.spec))
		})
	}
}
