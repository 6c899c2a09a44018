package machineconfig

import (
	"errors"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestReconcilable(t *testing.T) {
	t.Parallel()
	spec := func(ign string) *mcfgv1.MachineConfigSpec {
		return &mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: []byte(ign)}}
	}
	const v = `{"ignition":{"version":"3.2.0"}`
	tests := []struct {
		name      string
		old, new  *mcfgv1.MachineConfigSpec
		wantField string // empty: reconcilable
	}{
		{name: "file content change", old: spec(fileIgn("/etc/a", "data:,1", "")), new: spec(fileIgn("/etc/a", "data:,2", ""))},
		{name: "core ssh keys change",
			old: spec(v + `,"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["k1"]}]}}`),
			new: spec(v + `,"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["k2"],"passwordHash":"$6$x"}]}}`)},
		{name: "all links removed", old: spec(v + `,"storage":{"links":[{"path":"/etc/l","target":"/etc/t"}]}}`), new: spec(v + `}`)},
		{name: "unit change", old: spec(v + `}`), new: spec(v + `,"systemd":{"units":[{"name":"a.service","enabled":true}]}}`)},
		{name: "groups change", old: spec(v + `}`), new: spec(v + `,"passwd":{"groups":[{"name":"g"}]}}`), wantField: "spec.config.passwd.groups"},
		{name: "user other than core", old: spec(v + `}`), new: spec(v + `,"passwd":{"users":[{"name":"alice","sshAuthorizedKeys":["k"]}]}}`), wantField: "spec.config.passwd.users[0].name"},
		{name: "core with other fields", old: spec(v + `}`), new: spec(v + `,"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["k"],"shell":"/bin/zsh"}]}}`), wantField: "spec.config.passwd.users[0]"},
		{name: "core with neither key nor hash", old: spec(v + `}`), new: spec(v + `,"passwd":{"users":[{"name":"core"}]}}`), wantField: "spec.config.passwd.users[0]"},
		{name: "ignition kernel arguments", old: spec(`{"ignition":{"version":"3.3.0"}}`), new: spec(`{"ignition":{"version":"3.3.0"},"kernelArguments":{"shouldExist":["nosmt"]}}`), wantField: "spec.config.kernelArguments"},
		{name: "disks", old: spec(v + `}`), new: spec(v + `,"storage":{"disks":[{"device":"/dev/sdb"}]}}`), wantField: "spec.config.storage.disks"},
		{name: "filesystems", old: spec(v + `}`), new: spec(v + `,"storage":{"filesystems":[{"device":"/dev/sdb1","format":"xfs"}]}}`), wantField: "spec.config.storage.filesystems"},
		{name: "raid", old: spec(v + `}`), new: spec(v + `,"storage":{"raid":[{"name":"md0","level":"raid1","devices":["/dev/a","/dev/b"]}]}}`), wantField: "spec.config.storage.raid"},
		{name: "directories", old: spec(v + `}`), new: spec(v + `,"storage":{"directories":[{"path":"/var/d"}]}}`), wantField: "spec.config.storage.directories"},
		{name: "links changed", old: spec(v + `}`), new: spec(v + `,"storage":{"links":[{"path":"/etc/l","target":"/etc/t"}]}}`), wantField: "spec.config.storage.links"},
		{name: "append", old: spec(v + `}`), new: spec(v + `,"storage":{"files":[{"path":"/etc/a","append":[{"source":"data:,x"}]}]}}`), wantField: "spec.config.storage.files[0].append"},
		{name: "force file", old: spec(v + `}`), new: spec(fileIgn("/run/machine-config-daemon-force", "data:,", "")), wantField: "spec.config.storage.files[0].path"},
		{name: "fips", old: spec(v + `}`), new: &mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: []byte(v + `}`)}, FIPS: true}, wantField: "spec.fips"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Reconcilable(tc.old, tc.new)
			if tc.wantField == "" {
				assert.NoError(t, err)
				return
			}
			var ue *UnreconcilableError
			require.True(t, errors.As(err, &ue), "want UnreconcilableError, got %v", err)
			assert.Equal(t, tc.wantField, ue.Field)
			assert.NotEmpty(t, ue.Reason)
		})
	}
}
