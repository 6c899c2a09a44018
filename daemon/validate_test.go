package daemon

import (
	"context"
	"errors"
	"os"
	"strconv"
	"testing"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// validatedConfig is the config the validation and drift tests apply and check.
func validatedConfig(t *testing.T) *mcfgv1.MachineConfig {
	t.Helper()
	return newMC(t, "rendered-1",
		withFile("/etc/foo", plainURL("foo\n")),
		withFile("/etc/bar", plainURL("bar\n"), func(f *ign3types.File) { f.Mode = ptr(0o600) }),
		withFile(KubeletCAPath, plainURL("ca")),
		withFile(InternalRegistryPullSecretPath, plainURL("{}")),
		withUnit(ign3types.Unit{Name: "a.service", Contents: ptr("[Service]\n"), Enabled: ptr(true),
			Dropins: []ign3types.Dropin{{Name: "10-a.conf", Contents: ptr("[Unit]\n")}, {Name: "20-empty.conf"}}}),
		withUnit(ign3types.Unit{Name: "m.service", Mask: ptr(true)}),
		withUnit(ign3types.Unit{Name: "off.service", Enabled: ptr(false)}),
	)
}

func TestValidateOnDisk(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		change   func(t *testing.T, r Root, sd *fakeSystemd)
		wantPath string
		wantMsg  string
	}{
		{name: "as applied", change: func(*testing.T, Root, *fakeSystemd) {}},
		{
			name:     "content",
			change:   func(t *testing.T, r Root, _ *fakeSystemd) { writeHost(t, r, "/etc/foo", "edited\n", 0o644) },
			wantPath: "/etc/foo", wantMsg: `content mismatch for file "/etc/foo"`,
		},
		{
			name: "mode",
			change: func(t *testing.T, r Root, _ *fakeSystemd) {
				require.NoError(t, os.Chmod(r.HostPath("/etc/foo"), 0o755))
			},
			wantPath: "/etc/foo", wantMsg: `mode mismatch for file: "/etc/foo"; expected: -rw-r--r--; received: -rwxr-xr-x`,
		},
		{
			name:     "missing",
			change:   func(t *testing.T, r Root, _ *fakeSystemd) { require.NoError(t, os.Remove(r.HostPath("/etc/bar"))) },
			wantPath: "/etc/bar", wantMsg: `file "/etc/bar" does not exist`,
		},
		{
			name: "the first difference by path",
			change: func(t *testing.T, r Root, _ *fakeSystemd) {
				writeHost(t, r, "/etc/foo", "x", 0o644)
				writeHost(t, r, "/etc/bar", "x", 0o600)
				writeHost(t, r, UnitPath("a.service"), "x", 0o644)
			},
			wantPath: "/etc/bar", wantMsg: `content mismatch for file "/etc/bar"`,
		},
		{
			name: "unit contents",
			change: func(t *testing.T, r Root, _ *fakeSystemd) {
				writeHost(t, r, UnitPath("a.service"), "[Service]\nX=1\n", 0o644)
			},
			wantPath: UnitPath("a.service"), wantMsg: `content mismatch for file "/etc/systemd/system/a.service"`,
		},
		{
			name: "drop-in contents",
			change: func(t *testing.T, r Root, _ *fakeSystemd) {
				writeHost(t, r, DropinPath("a.service", "10-a.conf"), "", 0o644)
			},
			wantPath: DropinPath("a.service", "10-a.conf"), wantMsg: "content mismatch",
		},
		{
			name: "an empty drop-in left empty is fine",
			change: func(t *testing.T, r Root, _ *fakeSystemd) {
				writeHost(t, r, DropinPath("a.service", "20-empty.conf"), "", 0o644)
			},
		},
		{
			name: "an empty drop-in with contents",
			change: func(t *testing.T, r Root, _ *fakeSystemd) {
				writeHost(t, r, DropinPath("a.service", "20-empty.conf"), "x", 0o644)
			},
			wantPath: DropinPath("a.service", "20-empty.conf"), wantMsg: "content mismatch",
		},
		{
			name: "unmasked",
			change: func(t *testing.T, r Root, _ *fakeSystemd) {
				require.NoError(t, os.Remove(r.HostPath(UnitPath("m.service"))))
			},
			wantPath: UnitPath("m.service"), wantMsg: `state mismatch for unit "m.service": expected masked (a symlink to /dev/null)`,
		},
		{
			name:     "disabled",
			change:   func(_ *testing.T, _ Root, sd *fakeSystemd) { delete(sd.enabled, "a.service") },
			wantPath: UnitPath("a.service"), wantMsg: `state mismatch for unit "a.service": expected enabled, found disabled`,
		},
		{
			name:     "enabled",
			change:   func(_ *testing.T, _ Root, sd *fakeSystemd) { sd.enabled["off.service"] = true },
			wantPath: UnitPath("off.service"), wantMsg: `state mismatch for unit "off.service": expected disabled, found enabled`,
		},
		{
			name: "files the daemon rewrites itself are not checked",
			change: func(t *testing.T, r Root, _ *fakeSystemd) {
				writeHost(t, r, KubeletCAPath, "rotated", 0o600)
				require.NoError(t, os.Remove(r.HostPath(InternalRegistryPullSecretPath)))
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			r := setUpRoot(t, osFiles())
			sd := newFakeSystemd()
			mc := validatedConfig(t)
			require.NoError(t, ApplyConfig(ctx, r, sd, nil, mc, ApplyOptions{}))
			tc.change(t, r, sd)
			err := ValidateOnDisk(ctx, r, sd, mc)
			if tc.wantMsg == "" {
				require.NoError(t, err)
				return
			}
			var drift *DriftError
			require.True(t, errors.As(err, &drift), "a DriftError: %v", err)
			assert.Equal(t, tc.wantPath, drift.Path)
			assert.Contains(t, err.Error(), tc.wantMsg)
		})
	}
}

// writeHost writes a host file in place (not atomically), as an admin's editor might.
func writeHost(t *testing.T, r Root, p, content string, mode os.FileMode) {
	t.Helper()
	require.NoError(t, os.WriteFile(r.HostPath(p), []byte(content), mode))
	require.NoError(t, os.Chmod(r.HostPath(p), mode))
}

func TestCheckPaths(t *testing.T) {
	t.Parallel()
	raw := func(ign string) *mcfgv1.MachineConfig {
		mc := newMC(t, "rendered-x")
		mc.Spec.Config.Raw = []byte(ign)
		return mc
	}
	file := func(p string) string {
		return `{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/ok"},{"path":` + strconv.Quote(p) + `}]}}`
	}
	tests := []struct {
		name    string
		mc      *mcfgv1.MachineConfig
		wantErr string // substring; "" for no error
	}{
		{"nil config", nil, ""},
		{"empty config", raw(""), ""},
		{"managed files", raw(file("/var/lib/x")), ""},
		{"usr/local is managed", raw(file("/usr/local/bin/x")), ""},
		{"etc dotdot inside", raw(file("/etc/a/../b")), ""},
		{"usr", raw(file("/usr/bin/evil")), `storage.files[1].path "/usr/bin/evil"`},
		{"climbs out of the root", raw(file("/etc/../../../tmp/escape")), `"/etc/../../../tmp/escape" (/tmp/escape)`},
		{"relative", raw(file("etc/x")), `"etc/x"`},
		{"the root itself", raw(file("/")), `"/"`},
		{"etc itself", raw(file("/etc")), `"/etc"`},
		{"link", raw(`{"storage":{"links":[{"path":"/boot/x"}]}}`), `storage.links[0].path "/boot/x"`},
		{"directory", raw(`{"storage":{"directories":[{"path":"/sys/x"}]}}`), `storage.directories[0].path "/sys/x"`},
		{"unit with a slash", raw(`{"systemd":{"units":[{"name":"../../etc/passwd"}]}}`), `units[0].name "../../etc/passwd"`},
		{"not JSON: left to the parser", raw(`{`), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPaths(tt.mc)
			if tt.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.Contains(t, err.Error(), "rendered-x")
			assert.ErrorIs(t, err, ErrUnmanagedPath)
		})
	}
}
