package daemon

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"testing"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// cfgOpt changes the Ignition config or the spec of a test MachineConfig.
type cfgOpt func(*ign3types.Config, *mcfgv1.MachineConfigSpec)

// newMC returns a rendered-like MachineConfig with a 3.5 Ignition config built from opts.
func newMC(t testing.TB, name string, opts ...cfgOpt) *mcfgv1.MachineConfig {
	t.Helper()
	cfg := ign3types.Config{Ignition: ign3types.Ignition{Version: "3.5.0"}}
	spec := mcfgv1.MachineConfigSpec{}
	for _, o := range opts {
		o(&cfg, &spec)
	}
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	spec.Config = runtime.RawExtension{Raw: raw}
	return &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
}

func ptr[T any](v T) *T { return &v }

// plainURL is a percent-encoded data URL of s.
func plainURL(s string) string { return "data:," + url.PathEscape(s) }

// base64URL is a base64 data URL of s.
func base64URL(s string) string {
	return "data:text/plain;base64," + base64.StdEncoding.EncodeToString([]byte(s))
}

// gzipURL is a base64 data URL of s gzipped.
func gzipURL(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, err := zw.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return "data:;base64," + base64.StdEncoding.EncodeToString(b.Bytes())
}

// withFile adds a file; f may set mode, owner and compression.
func withFile(path, source string, f ...func(*ign3types.File)) cfgOpt {
	return func(c *ign3types.Config, _ *mcfgv1.MachineConfigSpec) {
		file := ign3types.File{Node: ign3types.Node{Path: path}}
		file.Contents.Source = ptr(source)
		for _, fn := range f {
			fn(&file)
		}
		c.Storage.Files = append(c.Storage.Files, file)
	}
}

func withUnit(u ign3types.Unit) cfgOpt {
	return func(c *ign3types.Config, _ *mcfgv1.MachineConfigSpec) {
		c.Systemd.Units = append(c.Systemd.Units, u)
	}
}

func withCore(hash string, keys ...string) cfgOpt {
	return func(c *ign3types.Config, _ *mcfgv1.MachineConfigSpec) {
		u := ign3types.PasswdUser{Name: "core"}
		if hash != "" {
			u.PasswordHash = ptr(hash)
		}
		for _, k := range keys {
			u.SSHAuthorizedKeys = append(u.SSHAuthorizedKeys, ign3types.SSHAuthorizedKey(k))
		}
		c.Passwd.Users = append(c.Passwd.Users, u)
	}
}

func withSpec(f func(*mcfgv1.MachineConfigSpec)) cfgOpt {
	return func(_ *ign3types.Config, s *mcfgv1.MachineConfigSpec) { f(s) }
}
