package daemon

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeSystemd records calls and keeps enablement in a map; Enable fails for units in failEnable.
type fakeSystemd struct {
	mu         sync.Mutex
	calls      []string
	enabled    map[string]bool
	failEnable map[string]bool
}

func newFakeSystemd(enabled ...string) *fakeSystemd {
	f := &fakeSystemd{enabled: map[string]bool{}, failEnable: map[string]bool{}}
	for _, u := range enabled {
		f.enabled[u] = true
	}
	return f
}

func (f *fakeSystemd) record(verb string, units ...string) {
	f.calls = append(f.calls, strings.TrimSpace(verb+" "+strings.Join(units, " ")))
}

func (f *fakeSystemd) DaemonReload(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("daemon-reload")
	return nil
}

func (f *fakeSystemd) Reload(_ context.Context, unit string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("reload", unit)
	return nil
}

func (f *fakeSystemd) Restart(_ context.Context, unit string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("restart", unit)
	return nil
}

func (f *fakeSystemd) Enable(_ context.Context, units ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("enable", units...)
	for _, u := range units {
		if f.failEnable[u] {
			return fmt.Errorf("enabling %s: no such unit", u)
		}
	}
	for _, u := range units {
		f.enabled[u] = true
	}
	return nil
}

func (f *fakeSystemd) Disable(_ context.Context, units ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("disable", units...)
	for _, u := range units {
		delete(f.enabled, u)
	}
	return nil
}

func (f *fakeSystemd) Preset(_ context.Context, units ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("preset", units...)
	for _, u := range units {
		delete(f.enabled, u) // the fake's presets disable everything
	}
	return nil
}

func (f *fakeSystemd) IsEnabled(_ context.Context, unit string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("is-enabled", unit)
	return f.enabled[unit], nil
}

func (f *fakeSystemd) Reboot(_ context.Context, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("reboot", reason)
	return nil
}

// takeCalls returns the calls so far and forgets them.
func (f *fakeSystemd) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.calls
	f.calls = nil
	return out
}

// changes returns the calls that change something (not is-enabled queries).
func changes(calls []string) []string {
	var out []string
	for _, c := range calls {
		if !strings.HasPrefix(c, "is-enabled ") {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeSystemd) enabledUnits() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for u, ok := range f.enabled {
		if ok {
			out = append(out, u)
		}
	}
	sort.Strings(out)
	return out
}

var _ Systemd = (*fakeSystemd)(nil)

// Users and groups of the test roots.
const (
	testPasswd = "root:x:0:0:root:/root:/bin/bash\ncore:x:1000:1001:CoreOS Admin:/var/home/core:/bin/bash\nsvc:x:1234:1234::/:/sbin/nologin\n"
	testGroup  = "root:x:0:\ncore:x:1001:\nsvcgrp:x:4321:svc\n"
	testShadow = "root:*:19000:0:99999:7:::\ncore:*:19000:0:99999:7:::\n"
)

// osFiles is a host with users, groups and a shadow file (mode 0640).
func osFiles(extra ...hostFile) []hostFile {
	return append([]hostFile{
		{path: PasswdPath, content: testPasswd}, {path: GroupPath, content: testGroup},
		{path: ShadowPath, content: testShadow, mode: 0o640},
	}, extra...)
}

// entry is what snapshot records for one path.
type entry struct {
	kind    string // "file", "link", "dir"
	content string // file content or link target
	mode    fs.FileMode
	uid     uint32
	gid     uint32
}

// snapshot records every path under the root.
func snapshot(t *testing.T, r Root) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	err := filepath.WalkDir(string(r), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(string(r), p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		e := entry{mode: fi.Mode(), uid: st.Uid, gid: st.Gid}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			e.kind = "link"
			e.content, err = os.Readlink(p)
		case fi.IsDir():
			e.kind = "dir"
		default:
			e.kind = "file"
			var b []byte
			b, err = os.ReadFile(p)
			e.content = string(b)
		}
		out["/"+rel] = e
		return err
	})
	require.NoError(t, err)
	return out
}

func TestApplyConfigFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := setUpRoot(t, osFiles())
	sd := newFakeSystemd()
	hash := "sha256-" + "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" // "hello"
	mc := newMC(t, "rendered-1",
		withFile("/etc/plain.conf", plainURL("a b\n")),
		withFile("/etc/gz.conf", gzipURL(t, "zipped"), func(f *ign3types.File) {
			f.Contents.Compression = ptr("gzip")
			f.Mode = ptr(0o600)
		}),
		withFile("/etc/hashed", base64URL("hello"), func(f *ign3types.File) { f.Contents.Verification.Hash = &hash }),
		withFile("/var/lib/by-id", plainURL("x"), func(f *ign3types.File) { f.User.ID = ptr(77); f.Group.ID = ptr(78) }),
		withFile("/etc/by-name", plainURL("y"), func(f *ign3types.File) {
			f.User.Name = ptr("svc")
			f.Group.Name = ptr("svcgrp")
			f.Mode = ptr(0o750)
		}),
		withFile("/etc/root-by-name", plainURL("z"), func(f *ign3types.File) { f.User.Name = ptr("root") }),
	)
	require.NoError(t, ApplyConfig(ctx, r, sd, nil, mc, ApplyOptions{}))
	assert.Empty(t, sd.takeCalls(), "no units, no systemd calls")

	snap := snapshot(t, r)
	for _, tc := range []struct {
		path, content string
		mode          fs.FileMode
		uid, gid      uint32
	}{
		{"/etc/plain.conf", "a b\n", 0o644, 0, 0},
		{"/etc/gz.conf", "zipped", 0o600, 0, 0},
		{"/etc/hashed", "hello", 0o644, 0, 0},
		{"/var/lib/by-id", "x", 0o644, 77, 78},
		{"/etc/by-name", "y", 0o750, 1234, 4321},
		{"/etc/root-by-name", "z", 0o644, 0, 0},
	} {
		e, ok := snap[tc.path]
		if assert.True(t, ok, tc.path) {
			assert.Equal(t, entry{kind: "file", content: tc.content, mode: tc.mode, uid: tc.uid, gid: tc.gid}, e, tc.path)
		}
	}
}

func TestApplyConfigRefusesBeforeWriting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    []cfgOpt
		wantErr error
		wantMsg []string
	}{
		{
			name: "unknown user name", opts: []cfgOpt{withFile("/etc/u", plainURL("x"), func(f *ign3types.File) { f.User.Name = ptr("nobody-here") })},
			wantMsg: []string{`config "rendered-new"`, "/etc/u", `user "nobody-here" not found in /etc/passwd`},
		},
		{
			name: "unknown group name", opts: []cfgOpt{withFile("/etc/g", plainURL("x"), func(f *ign3types.File) { f.Group.Name = ptr("nogroup") })},
			wantMsg: []string{"/etc/g", `group "nogroup" not found in /etc/group`},
		},
		{
			name: "append", opts: []cfgOpt{withFile("/etc/a", plainURL("x"), func(f *ign3types.File) {
				f.Append = []ign3types.Resource{{Source: ptr(plainURL("y"))}}
			})},
			wantMsg: []string{"/etc/a", "append is not supported"},
		},
		{
			name: "hash mismatch", opts: []cfgOpt{withFile("/etc/h", plainURL("x"), func(f *ign3types.File) { f.Contents.Verification.Hash = ptr("sha256-" + strings.Repeat("0", 64)) })},
			wantMsg: []string{"/etc/h", "verification.hash"},
		},
		{
			name: "a user other than core", opts: []cfgOpt{func(c *ign3types.Config, _ *mcfgv1.MachineConfigSpec) {
				c.Passwd.Users = append(c.Passwd.Users, ign3types.PasswdUser{Name: "alice", SSHAuthorizedKeys: []ign3types.SSHAuthorizedKey{"ssh-ed25519 AAAA"}})
			}},
			wantMsg: []string{`not "alice"`},
		},
		{
			name: "a unit name leading out of the unit directory", opts: []cfgOpt{withUnit(ign3types.Unit{Name: "../../shadow.service", Contents: ptr("x")})},
			wantMsg: []string{`spec.config.systemd.units[0]: name "../../shadow.service"`},
		},
		{
			name: "a drop-in name leading out of the unit directory", opts: []cfgOpt{withUnit(ign3types.Unit{Name: "a.service", Dropins: []ign3types.Dropin{{Name: "../../x.conf", Contents: ptr("x")}}})},
			wantMsg: []string{`drop-in name "../../x.conf"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := setUpRoot(t, osFiles())
			before := snapshot(t, r)
			opts := append([]cfgOpt{withFile("/etc/first", plainURL("first"))}, tc.opts...)
			err := ApplyConfig(context.Background(), r, newFakeSystemd(), newMC(t, "rendered-old"), newMC(t, "rendered-new", opts...), ApplyOptions{})
			require.Error(t, err)
			for _, m := range tc.wantMsg {
				assert.Contains(t, err.Error(), m)
			}
			assert.Equal(t, before, snapshot(t, r), "nothing written")
		})
	}
}

func TestApplyConfigUnmanagedPath(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"/usr/bin/evil", "/etc/lnk/bin/evil"} {
		r := setUpRoot(t, osFiles(hostFile{path: "/etc/lnk", link: "/usr"}))
		err := ApplyConfig(context.Background(), r, newFakeSystemd(), nil, newMC(t, "rendered-bad",
			withFile("/etc/ok", plainURL("ok")), withFile(p, plainURL("x"))), ApplyOptions{})
		require.ErrorIs(t, err, ErrUnmanagedPath, p)
		assert.Contains(t, err.Error(), `config "rendered-bad"`)
		assert.Contains(t, err.Error(), p)
		_, err = os.Lstat(r.HostPath("/usr/bin/evil"))
		assert.ErrorIs(t, err, fs.ErrNotExist)
		_, _, ok := readHost(t, r, "/etc/ok")
		assert.False(t, ok, "paths are checked before the first write")
	}
}

func TestApplyConfigStaleFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := setUpRoot(t, osFiles(
		hostFile{path: "/etc/shipped.conf", content: "from the OS", mode: 0o640},
		hostFile{path: KubeletCAPath, content: "ca"},
		hostFile{path: "/etc/docker/certs.d/reg:5000/ca.crt", content: "reg ca"},
	))
	sd := newFakeSystemd()
	old := newMC(t, "rendered-1",
		withFile("/etc/shipped.conf", plainURL("from config 1")),
		withFile("/etc/created.conf", plainURL("created")),
		withFile("/etc/kept.conf", plainURL("kept 1")),
		withFile(KubeletCAPath, plainURL("ca")),
		withFile("/etc/docker/certs.d/reg:5000/ca.crt", plainURL("reg ca")),
	)
	require.NoError(t, ApplyConfig(ctx, r, sd, nil, old, ApplyOptions{}))
	// A file a config once listed that is no longer the config's (no backup, another content) stays.
	legacy := newMC(t, "rendered-0", withFile("/etc/legacy.conf", plainURL("legacy")), withFile("/etc/foreign.conf", plainURL("config's")))
	require.NoError(t, os.WriteFile(r.HostPath("/etc/legacy.conf"), []byte("legacy"), 0o644))
	require.NoError(t, os.WriteFile(r.HostPath("/etc/foreign.conf"), []byte("someone else's"), 0o644))
	new := newMC(t, "rendered-2", withFile("/etc/kept.conf", plainURL("kept 2")))

	require.NoError(t, ApplyConfig(ctx, r, sd, old, new, ApplyOptions{}))
	require.NoError(t, ApplyConfig(ctx, r, sd, legacy, new, ApplyOptions{}))
	snap := snapshot(t, r)
	assert.Equal(t, entry{kind: "file", content: "from the OS", mode: 0o640}, snap["/etc/shipped.conf"], "original restored")
	assert.NotContains(t, snap, OrigDir+"/etc/shipped.conf"+OrigSuffix)
	assert.NotContains(t, snap, "/etc/created.conf", "created file deleted")
	assert.NotContains(t, snap, NoOrigDir+"/etc/created.conf"+NoOrigSuffix)
	assert.Equal(t, "kept 2", snap["/etc/kept.conf"].content)
	assert.Equal(t, "ca", snap[KubeletCAPath].content, "kubelet CA kept")
	assert.Equal(t, "reg ca", snap["/etc/docker/certs.d/reg:5000/ca.crt"].content, "registry certificates kept")
	assert.NotContains(t, snap, "/etc/legacy.conf", "a file written before backups, unchanged, is removed")
	assert.Equal(t, "someone else's", snap["/etc/foreign.conf"].content, "a file that is not the config's stays")

	// Removing again does not delete the restored original.
	require.NoError(t, ApplyConfig(ctx, r, sd, old, new, ApplyOptions{}))
	assert.Equal(t, snap, snapshot(t, r))
}

func TestApplyConfigIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := setUpRoot(t, osFiles(hostFile{path: "/home/core", dir: true}))
	sd := newFakeSystemd("edited.service")
	old := newMC(t, "rendered-1",
		withFile("/etc/a.conf", plainURL("a1")),
		withFile("/etc/gone.conf", plainURL("gone")),
		withUnit(ign3types.Unit{Name: "edited.service", Contents: ptr("[Service]\nExecStart=/bin/a\n"), Enabled: ptr(true)}),
		withUnit(ign3types.Unit{Name: "removed.service", Contents: ptr("[Service]\nExecStart=/bin/r\n")}),
	)
	new := newMC(t, "rendered-2",
		withFile("/etc/a.conf", plainURL("a2")),
		withUnit(ign3types.Unit{Name: "edited.service", Contents: ptr("[Service]\nExecStart=/bin/b\n"), Enabled: ptr(true)}),
		withUnit(ign3types.Unit{Name: "new.service", Contents: ptr("[Service]\nExecStart=/bin/n\n"), Enabled: ptr(true),
			Dropins: []ign3types.Dropin{{Name: "10-x.conf", Contents: ptr("[Service]\nEnvironment=X=1\n")}}}),
		withUnit(ign3types.Unit{Name: "masked.service", Mask: ptr(true)}),
		withUnit(ign3types.Unit{Name: "off.service", Enabled: ptr(false)}),
		withCore("$6$salt$hash", "ssh-ed25519 AAAA core@a"),
	)
	require.NoError(t, ApplyConfig(ctx, r, sd, nil, old, ApplyOptions{}))
	sd.takeCalls()

	require.NoError(t, ApplyConfig(ctx, r, sd, old, new, ApplyOptions{}))
	first := sd.takeCalls()
	assert.Equal(t, []string{
		"is-enabled edited.service", "disable edited.service", "is-enabled new.service", "is-enabled off.service",
		"preset removed.service", "daemon-reload", "enable edited.service new.service",
	}, first)
	after := snapshot(t, r)

	require.NoError(t, ApplyConfig(ctx, r, sd, old, new, ApplyOptions{}))
	second := sd.takeCalls()
	assert.Empty(t, changes(second), "second apply changes nothing in systemd")
	assert.Equal(t, after, snapshot(t, r), "second apply leaves the host as it was")
	assert.Equal(t, []string{"edited.service", "new.service"}, sd.enabledUnits())

	// Force rewrites every unit and sets enablement without asking.
	require.NoError(t, ApplyConfig(ctx, r, sd, old, new, ApplyOptions{Force: true}))
	assert.Equal(t, []string{
		"is-enabled edited.service", "disable edited.service", "is-enabled new.service", "disable new.service",
		"daemon-reload", "enable edited.service new.service", "disable off.service",
	}, sd.takeCalls())
	assert.Equal(t, []string{"edited.service", "new.service"}, sd.enabledUnits())
}

func TestApplyConfigRollback(t *testing.T) {
	t.Parallel()
	oldOpts := []cfgOpt{
		withFile("/etc/shared.conf", plainURL("old shared")),
		withFile("/etc/only-old.conf", plainURL("only old"), func(f *ign3types.File) { f.Mode = ptr(0o600) }),
		withUnit(ign3types.Unit{Name: "svc.service", Contents: ptr("[Service]\nExecStart=/bin/old\n"), Enabled: ptr(true)}),
		withCore("", "ssh-ed25519 OLD core@old"),
	}
	newOpts := []cfgOpt{
		withFile("/etc/shared.conf", plainURL("new shared")),
		withFile("/etc/os.conf", plainURL("config's os.conf")),
		withFile("/etc/only-new.conf", plainURL("only new")),
		withUnit(ign3types.Unit{Name: "svc.service", Contents: ptr("[Service]\nExecStart=/bin/new\n"), Enabled: ptr(true)}),
		withUnit(ign3types.Unit{Name: "added.service", Contents: ptr("[Service]\nExecStart=/bin/added\n"), Enabled: ptr(true)}),
		withCore("$6$new$hash", "ssh-ed25519 NEW core@new"),
	}
	tests := []struct {
		name      string
		extraNew  []cfgOpt
		failUnits []string
		wantMsg   string
	}{
		{
			name: "a file whose directory is a file", wantMsg: "/etc/blocker/x.conf",
			extraNew: []cfgOpt{withFile("/etc/blocker/x.conf", plainURL("x"))},
		},
		{name: "systemd fails to enable a unit", failUnits: []string{"added.service"}, wantMsg: "enabling units [added.service svc.service]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			r := setUpRoot(t, osFiles(
				hostFile{path: "/etc/os.conf", content: "shipped", mode: 0o640},
				hostFile{path: "/etc/blocker", content: "a file"},
				hostFile{path: "/home/core", dir: true},
			))
			sd := newFakeSystemd()
			old := newMC(t, "rendered-old", oldOpts...)
			require.NoError(t, ApplyConfig(ctx, r, sd, nil, old, ApplyOptions{}))
			before := snapshot(t, r)
			require.Equal(t, []string{"svc.service"}, sd.enabledUnits())
			for _, u := range tc.failUnits {
				sd.failEnable[u] = true
			}

			new := newMC(t, "rendered-new", append(append([]cfgOpt{}, newOpts...), tc.extraNew...)...)
			err := ApplyConfig(ctx, r, sd, old, new, ApplyOptions{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), `applying config "rendered-new"`)
			assert.Contains(t, err.Error(), tc.wantMsg)
			assert.NotContains(t, err.Error(), "rolling back", "the rollback succeeded")
			after := snapshot(t, r)
			for p, e := range before {
				if e.kind != "dir" {
					assert.Equal(t, e, after[p], "%s is back", p)
				}
			}
			for p, e := range after {
				if _, ok := before[p]; !ok && e.kind != "dir" {
					t.Errorf("%s is left over from the failed config", p)
				}
			}
			assert.Contains(t, sd.enabledUnits(), "svc.service")
		})
	}
}

func TestApplyConfigRollbackFailureIsJoined(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := setUpRoot(t, osFiles())
	sd := newFakeSystemd()
	old := newMC(t, "rendered-old", withUnit(ign3types.Unit{Name: "a.service", Contents: ptr("[Unit]\n"), Enabled: ptr(true)}))
	require.NoError(t, ApplyConfig(ctx, r, sd, nil, old, ApplyOptions{}))
	sd.failEnable["a.service"] = true
	sd.enabled = map[string]bool{}
	new := newMC(t, "rendered-new", withUnit(ign3types.Unit{Name: "a.service", Contents: ptr("[Unit]\nDescription=new\n"), Enabled: ptr(true)}))
	err := ApplyConfig(ctx, r, sd, old, new, ApplyOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `applying config "rendered-new"`)
	assert.Contains(t, err.Error(), `rolling back to config "rendered-old"`)
	content, _, _ := readHost(t, r, UnitPath("a.service"))
	assert.Equal(t, "[Unit]\n", content, "files rolled back even though enabling failed")

	// Without an old config there is nothing to roll back to.
	err = ApplyConfig(ctx, setUpRoot(t, osFiles()), sd, nil, new, ApplyOptions{})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "rolling back")
}
