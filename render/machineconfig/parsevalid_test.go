package machineconfig

import (
	"fmt"
	"testing"

	ign3 "github.com/coreos/ignition/v2/config/v3_5"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// parseCases are Ignition configs valid and invalid, of the versions parseValid handles and others.
var parseCases = []struct {
	name  string
	raw   string
	valid bool
}{
	{name: "3.5 files units users", valid: true, raw: `{"ignition":{"version":"3.5.0"},"storage":{"files":[{"path":"/etc/a","mode":420,"contents":{"source":"data:,a"}}]},"systemd":{"units":[{"name":"a.service","enabled":true,"contents":"[Service]\nExecStart=/bin/true"}]},"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["ssh-ed25519 AAAA"]}]}}`},
	{name: "3.4 gzip file", valid: true, raw: `{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/b","contents":{"compression":"gzip","source":"data:;base64,H4sIAAAAAAAA/0sEAOH+UEcBAAAA"}}]}}`},
	{name: "3.4 unused key (a warning only)", valid: true, raw: `{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/c","bogus":1}]}}`},
	{name: "3.2 file", valid: true, raw: `{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/d","contents":{"source":"data:,d"}}]}}`},
	{name: "3.5 relative path", raw: `{"ignition":{"version":"3.5.0"},"storage":{"files":[{"path":"etc/a"}]}}`},
	{name: "3.4 duplicate file", raw: `{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/a"},{"path":"/etc/a"}]}}`},
	{name: "3.4 bad mode type", raw: `{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/a","mode":"644"}]}}`},
	{name: "3.4 bad unit name", raw: `{"ignition":{"version":"3.4.0"},"systemd":{"units":[{"name":"nosuffix"}]}}`},
	{name: "3.4 bad data URL", raw: `{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/a","contents":{"source":"data:;base64,!!"}}]}}`},
	{name: "3.4.1 unknown version", raw: `{"ignition":{"version":"3.4.1"}}`},
	{name: "3.6 unsupported", raw: `{"ignition":{"version":"3.6.0"}}`},
}

// TestParseValidSameAsIgnition: ParseIgnition (which skips Ignition's report-only work for valid 3.4/3.5
// configs) returns what Ignition's own parse returns, config and error alike.
func TestParseValidSameAsIgnition(t *testing.T) {
	t.Parallel()
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseIgnition([]byte(tc.raw))
			want, _, wantErr := ign3.ParseCompatibleVersion([]byte(tc.raw))
			if !tc.valid {
				require.Error(t, err)
				require.Error(t, wantErr, "the case must be invalid for Ignition too")
				return
			}
			require.NoError(t, wantErr)
			require.NoError(t, err)
			require.Equal(t, want, got)
		})
	}
}

// TestParseCacheSameAsParse: a config parsed through the cache — first, again by UID, again by content
// under another UID and resourceVersion — is the same as Parse's, report included.
func TestParseCacheSameAsParse(t *testing.T) {
	t.Parallel()
	c := NewParseCache()
	for i, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			mc := func(uid, rv string) *mcfgv1.MachineConfig {
				return &mcfgv1.MachineConfig{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%02d-case", i), UID: types.UID(uid), ResourceVersion: rv},
					Spec:       mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: []byte(tc.raw)}},
				}
			}
			want := Parse(mc("u", "1"))
			for _, in := range []*mcfgv1.MachineConfig{mc(fmt.Sprint("a", i), "1"), mc(fmt.Sprint("a", i), "1"),
				mc(fmt.Sprint("b", i), "7"), mc("", "")} {
				got := c.Parse(in)
				require.Equal(t, want.Ignition, got.Ignition)
				require.Equal(t, fmt.Sprint(want.ParseErr), fmt.Sprint(got.ParseErr))
				require.Equal(t, want.Invalid.ToAggregate(), got.Invalid.ToAggregate())
				require.Equal(t, in.Name, got.Config.Name)
			}
		})
	}
	c.Retain(nil)
	require.Zero(t, c.Len())
	require.Empty(t, c.content, "content results of dropped configs are dropped too")
}
