package machineconfig

import (
	"testing"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sshKeys(cfg ign3types.Config, user string) []string {
	for _, u := range cfg.Passwd.Users {
		if u.Name == user {
			out := make([]string, 0, len(u.SSHAuthorizedKeys))
			for _, k := range u.SSHAuthorizedKeys {
				out = append(out, string(k))
			}
			return out
		}
	}
	return nil
}

func TestParseSpec2DuplicateSSHKeys(t *testing.T) {
	t.Parallel()
	users := `"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["ssh-rsa AAA a","ssh-ed25519 BBB b","ssh-rsa AAA a","ssh-ed25519 CCC c","ssh-ed25519 BBB b"]}]}`
	tests := []struct {
		name    string
		raw     string
		want    []string
		wantErr string
	}{
		{name: "spec 2.2: repeats dropped, first of each kept in order",
			raw: `{"ignition":{"version":"2.2.0"},` + users + `}`, want: []string{"ssh-rsa AAA a", "ssh-ed25519 BBB b", "ssh-ed25519 CCC c"}},
		{name: "spec 2.4 the same",
			raw: `{"ignition":{"version":"2.4.0"},` + users + `}`, want: []string{"ssh-rsa AAA a", "ssh-ed25519 BBB b", "ssh-ed25519 CCC c"}},
		{name: "spec 2 without repeats unchanged",
			raw:  `{"ignition":{"version":"2.2.0"},"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["k2","k1"]}]}}`,
			want: []string{"k2", "k1"}},
		{name: "spec 3 keeps refusing a repeat, as Ignition and the reference do",
			raw:     `{"ignition":{"version":"3.2.0"},"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["k","k"]}]}}`,
			wantErr: "duplicate entry"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := ParseIgnition([]byte(tc.raw))
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, sshKeys(cfg, "core"))
		})
	}
}

// TestParseSpec2Duplicates checks the reference's clean-up of spec 2 repeats: the last revision of a file or
// unit is kept and the lists come out reversed, drop-ins of repeated units are kept, core entries are joined.
func TestParseSpec2Duplicates(t *testing.T) {
	t.Parallel()
	files := `"storage":{"files":[` +
		`{"filesystem":"root","path":"/etc/a","mode":420,"contents":{"source":"data:,old"}},` +
		`{"filesystem":"root","path":"/etc/b","mode":420,"contents":{"source":"data:,b"}},` +
		`{"filesystem":"root","path":"/etc/a","mode":420,"contents":{"source":"data:,new"}}]}`
	units := `"systemd":{"units":[{"name":"a.service","contents":"old","dropins":[{"name":"10-x.conf","contents":"x"}]},` +
		`{"name":"b.service","contents":"b"},{"name":"a.service","contents":"new","dropins":[{"name":"20-y.conf","contents":"y"}]}]}`
	users := `"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["k1","k2"]},{"name":"core","sshAuthorizedKeys":["k3","k1"]}]}`
	cfg, err := ParseIgnition([]byte(`{"ignition":{"version":"2.2.0"},` + files + `,` + units + `,` + users + `}`))
	require.NoError(t, err)

	require.Len(t, cfg.Storage.Files, 2)
	assert.Equal(t, "/etc/a", cfg.Storage.Files[0].Path, "the list comes out reversed")
	assert.Equal(t, "data:,new", *cfg.Storage.Files[0].Contents.Source, "the last revision wins")
	assert.Equal(t, "/etc/b", cfg.Storage.Files[1].Path)

	require.Len(t, cfg.Systemd.Units, 2)
	assert.Equal(t, "a.service", cfg.Systemd.Units[0].Name)
	assert.Equal(t, "new", *cfg.Systemd.Units[0].Contents)
	var dropins []string
	for _, d := range cfg.Systemd.Units[0].Dropins {
		dropins = append(dropins, d.Name)
	}
	assert.Equal(t, []string{"20-y.conf", "10-x.conf"}, dropins)

	require.Len(t, cfg.Passwd.Users, 1)
	assert.Equal(t, []string{"k3", "k1", "k2"}, sshKeys(cfg, "core"), "last entry's keys first, each once")

	_, err = ParseIgnition([]byte(`{"ignition":{"version":"2.2.0"},"passwd":{"users":[{"name":"admin","sshAuthorizedKeys":["k"]}]}}`))
	require.ErrorContains(t, err, "unexpected user with name: admin. Only core user is supported")
}

// TestMergeSpec2DuplicateSSHKeys renders a pool whose old spec 2 config repeats a key next to a spec 3 config
// adding one: the keys are the union in order, each once.
func TestMergeSpec2DuplicateSSHKeys(t *testing.T) {
	t.Parallel()
	spec, err := Merge([]*mcfgv1.MachineConfig{
		mc("99-worker-ssh", "worker", `{"ignition":{"version":"2.2.0"},"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["k1","k1","k2"]}]}}`),
		mc("99-worker-ssh-2", "worker", `{"ignition":{"version":"3.2.0"},"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["k2","k3"]}]}}`),
	}, Base{})
	require.NoError(t, err)
	assert.Equal(t, []string{"k1", "k2", "k3"}, sshKeys(mustIgnition(t, spec), "core"))
}

// FuzzParseIgnition feeds arbitrary bytes to the Ignition parser (user input: a MachineConfig's
// spec.config): it must never panic, and a config it accepts must serialize and parse again to the same
// config.
func FuzzParseIgnitionSpec2(f *testing.F) {
	for _, seed := range []string{
		``,
		`{"ignition":{"version":"2.2.0"},"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["a","a","b"]}]}}`,
		`{"ignition":{"version":"2.4.0"},"storage":{"files":[{"filesystem":"root","path":"/etc/a","mode":420,"contents":{"source":"data:,x"}}]}}`,
		`{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/a","mode":2541,"contents":{"source":"data:,x"}}]}}`,
		`{"ignition":{"version":"3.5.0"},"systemd":{"units":[{"name":"a.service","enabled":true,"contents":"[Unit]"}]}}`,
		`{"ignition":{"version":"4.0.0"}}`,
		`{"ignition":{"version":"x"}}`,
		`[`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		cfg, err := ParseIgnition(raw)
		if err != nil {
			return
		}
		p := Parse(mc("00-fuzz", "worker", string(raw)))
		if len(p.Invalid) > 0 {
			return
		}
		spec, err := MergeParsed([]*Parsed{p}, Base{})
		if err != nil {
			return
		}
		for _, f := range cfg.Storage.Files {
			if f.Contents.Source == nil && f.Overwrite == nil {
				// Known and kept for compatibility: rendering gives every file overwrite: true, as the
				// reference does, which Ignition refuses for a file without contents.
				return
			}
		}
		again, err := IgnitionOf(spec)
		if err != nil {
			t.Fatalf("a config that parsed does not parse again after rendering: %v", err)
		}
		if len(again.Passwd.Users) != len(cfg.Passwd.Users) || len(again.Storage.Files) != len(cfg.Storage.Files) {
			t.Fatalf("rendering changed the config: %d users/%d files, then %d/%d",
				len(cfg.Passwd.Users), len(cfg.Storage.Files), len(again.Passwd.Users), len(again.Storage.Files))
		}
	})
}
