package daemon

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestApplyConfigUnits(t *testing.T) {
	t.Parallel()
	const (
		svc    = "[Service]\nExecStart=/bin/true\n"
		svc2   = "[Service]\nExecStart=/bin/false\n"
		dropin = "[Service]\nEnvironment=A=1\n"
	)
	unitFile := func(name, content string) hostFile { return hostFile{path: UnitPath(name), content: content} }
	tests := []struct {
		name      string
		host      []hostFile
		enabled   []string
		old, new  []ign3types.Unit
		force     bool
		wantCalls []string
		// wantFiles maps host paths to their content, "->target" for a symlink, "" for absent.
		wantFiles   map[string]string
		wantEnabled []string
	}{
		{
			name:      "new unit enabled",
			new:       []ign3types.Unit{{Name: "a.service", Contents: ptr(svc), Enabled: ptr(true)}},
			wantCalls: []string{"is-enabled a.service", "daemon-reload", "enable a.service"},
			wantFiles: map[string]string{UnitPath("a.service"): svc}, wantEnabled: []string{"a.service"},
		},
		{
			name: "rewriting an enabled unit disables it first and enables it again", host: []hostFile{unitFile("a.service", svc)}, enabled: []string{"a.service"},
			old:       []ign3types.Unit{{Name: "a.service", Contents: ptr(svc)}},
			new:       []ign3types.Unit{{Name: "a.service", Contents: ptr(svc2)}},
			wantCalls: []string{"is-enabled a.service", "disable a.service", "daemon-reload", "enable a.service"},
			wantFiles: map[string]string{UnitPath("a.service"): svc2}, wantEnabled: []string{"a.service"},
		},
		{
			name: "rewriting an enabled unit that should be disabled", host: []hostFile{unitFile("a.service", svc)}, enabled: []string{"a.service"},
			old:       []ign3types.Unit{{Name: "a.service", Contents: ptr(svc), Enabled: ptr(true)}},
			new:       []ign3types.Unit{{Name: "a.service", Contents: ptr(svc2), Enabled: ptr(false)}},
			wantCalls: []string{"is-enabled a.service", "disable a.service", "daemon-reload"},
			wantFiles: map[string]string{UnitPath("a.service"): svc2},
		},
		{
			name: "disabling an unchanged unit", host: []hostFile{unitFile("a.service", svc)}, enabled: []string{"a.service"},
			old:       []ign3types.Unit{{Name: "a.service", Contents: ptr(svc), Enabled: ptr(true)}},
			new:       []ign3types.Unit{{Name: "a.service", Contents: ptr(svc), Enabled: ptr(false)}},
			wantCalls: []string{"is-enabled a.service", "disable a.service"},
			wantFiles: map[string]string{UnitPath("a.service"): svc},
		},
		{
			name: "enabling a vendor unit", new: []ign3types.Unit{{Name: "chronyd.service", Enabled: ptr(true)}},
			wantCalls: []string{"is-enabled chronyd.service", "enable chronyd.service"}, wantEnabled: []string{"chronyd.service"},
			wantFiles: map[string]string{UnitPath("chronyd.service"): ""},
		},
		{
			name: "mask", host: []hostFile{unitFile("a.service", svc)},
			old:       []ign3types.Unit{{Name: "a.service", Contents: ptr(svc)}},
			new:       []ign3types.Unit{{Name: "a.service", Mask: ptr(true)}},
			wantCalls: []string{"daemon-reload"},
			wantFiles: map[string]string{UnitPath("a.service"): "->/dev/null"},
		},
		{
			name: "explicit mask false removes the mask", host: []hostFile{{path: UnitPath("a.service"), link: "/dev/null"}},
			old:       []ign3types.Unit{{Name: "a.service", Mask: ptr(true)}},
			new:       []ign3types.Unit{{Name: "a.service", Mask: ptr(false)}},
			wantCalls: []string{"daemon-reload"},
			wantFiles: map[string]string{UnitPath("a.service"): ""},
		},
		{
			name: "contents replace a mask", host: []hostFile{{path: UnitPath("a.service"), link: "/dev/null"}},
			old:       []ign3types.Unit{{Name: "a.service", Mask: ptr(true)}},
			new:       []ign3types.Unit{{Name: "a.service", Contents: ptr(svc), Mask: ptr(false)}},
			wantCalls: []string{"is-enabled a.service", "daemon-reload"},
			wantFiles: map[string]string{UnitPath("a.service"): svc},
		},
		{
			name: "drop-ins written and an empty one deleted",
			host: []hostFile{{path: DropinPath("crio.service", "10-old.conf"), content: "old"}},
			old:  []ign3types.Unit{{Name: "crio.service", Dropins: []ign3types.Dropin{{Name: "10-old.conf", Contents: ptr("old")}}}},
			new: []ign3types.Unit{{Name: "crio.service", Dropins: []ign3types.Dropin{
				{Name: "10-old.conf", Contents: ptr("")}, {Name: "20-new.conf", Contents: ptr(dropin)},
			}}},
			wantCalls: []string{"daemon-reload"},
			wantFiles: map[string]string{DropinPath("crio.service", "10-old.conf"): "", DropinPath("crio.service", "20-new.conf"): dropin},
		},
		{
			name: "a drop-in the new config drops is removed",
			old:  []ign3types.Unit{{Name: "crio.service", Dropins: []ign3types.Dropin{{Name: "10-a.conf", Contents: ptr("a")}, {Name: "20-b.conf", Contents: ptr("b")}}}},
			new:  []ign3types.Unit{{Name: "crio.service", Dropins: []ign3types.Dropin{{Name: "10-a.conf", Contents: ptr("a")}}}},
			// The old config is applied first in the test, so these files are the config's.
			wantCalls: []string{"daemon-reload"},
			wantFiles: map[string]string{DropinPath("crio.service", "10-a.conf"): "a", DropinPath("crio.service", "20-b.conf"): ""},
		},
		{
			name: "a removed unit is preset and its files removed", enabled: []string{"a.service"},
			old:       []ign3types.Unit{{Name: "a.service", Contents: ptr(svc), Dropins: []ign3types.Dropin{{Name: "x.conf", Contents: ptr(dropin)}}}},
			wantCalls: []string{"preset a.service", "daemon-reload"},
			wantFiles: map[string]string{UnitPath("a.service"): "", DropinPath("a.service", "x.conf"): "", UnitPath("a.service") + ".d": ""},
		},
		{
			name:      "a removed unit overriding an OS unit gets the original back",
			host:      []hostFile{unitFile("os.service", "shipped")},
			old:       []ign3types.Unit{{Name: "os.service", Contents: ptr(svc)}},
			wantCalls: []string{"preset os.service", "daemon-reload"},
			wantFiles: map[string]string{UnitPath("os.service"): "shipped"},
		},
		{
			name: "contents dropped from a unit the config keeps",
			old:  []ign3types.Unit{{Name: "a.service", Contents: ptr(svc), Enabled: ptr(true)}},
			new:  []ign3types.Unit{{Name: "a.service", Enabled: ptr(true)}}, enabled: []string{"a.service"},
			wantCalls: []string{"is-enabled a.service", "daemon-reload"},
			wantFiles: map[string]string{UnitPath("a.service"): ""}, wantEnabled: []string{"a.service"},
		},
		{
			name: "a mask dropped from a unit the config keeps gives the original back", host: []hostFile{unitFile("os.service", "shipped")},
			old:       []ign3types.Unit{{Name: "os.service", Mask: ptr(true)}},
			new:       []ign3types.Unit{{Name: "os.service", Dropins: []ign3types.Dropin{{Name: "10-x.conf", Contents: ptr(dropin)}}}},
			wantCalls: []string{"daemon-reload"},
			wantFiles: map[string]string{UnitPath("os.service"): "shipped", DropinPath("os.service", "10-x.conf"): dropin},
		},
		{
			name: "a removed mask is removed before the preset", old: []ign3types.Unit{{Name: "m.service", Mask: ptr(true)}},
			wantCalls: []string{"preset m.service", "daemon-reload"},
			wantFiles: map[string]string{UnitPath("m.service"): ""},
		},
		{
			name: "unchanged units are not written", host: []hostFile{unitFile("a.service", svc)},
			old:       []ign3types.Unit{{Name: "a.service", Contents: ptr(svc)}},
			new:       []ign3types.Unit{{Name: "a.service", Contents: ptr(svc)}},
			wantFiles: map[string]string{UnitPath("a.service"): svc},
		},
		{
			name: "force writes unchanged units", host: []hostFile{unitFile("a.service", svc)}, force: true,
			old:       []ign3types.Unit{{Name: "a.service", Contents: ptr(svc)}},
			new:       []ign3types.Unit{{Name: "a.service", Contents: ptr(svc)}},
			wantCalls: []string{"is-enabled a.service", "daemon-reload"},
			wantFiles: map[string]string{UnitPath("a.service"): svc},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			r := setUpRoot(t, osFiles(tc.host...))
			var oldOpts, newOpts []cfgOpt
			for _, u := range tc.old {
				oldOpts = append(oldOpts, withUnit(u))
			}
			for _, u := range tc.new {
				newOpts = append(newOpts, withUnit(u))
			}
			old, new := newMC(t, "rendered-old", oldOpts...), newMC(t, "rendered-new", newOpts...)
			// The host runs the old config, applied from scratch.
			sd := newFakeSystemd()
			require.NoError(t, ApplyConfig(ctx, r, sd, nil, old, ApplyOptions{}))
			sd = newFakeSystemd(tc.enabled...)

			require.NoError(t, ApplyConfig(ctx, r, sd, old, new, ApplyOptions{Force: tc.force}))
			assert.Equal(t, tc.wantCalls, sd.takeCalls())
			assert.Equal(t, tc.wantEnabled, sd.enabledUnits())
			for p, want := range tc.wantFiles {
				fi, err := os.Lstat(r.HostPath(p))
				switch {
				case want == "":
					assert.ErrorIs(t, err, os.ErrNotExist, "%s is absent", p)
				case strings.HasPrefix(want, "->"):
					require.NoError(t, err)
					target, err := os.Readlink(r.HostPath(p))
					require.NoError(t, err)
					assert.Equal(t, want[2:], target, p)
				default:
					require.NoError(t, err)
					assert.True(t, fi.Mode().IsRegular(), p)
					content, mode, _ := readHost(t, r, p)
					assert.Equal(t, want, content, p)
					if p != UnitPath("os.service") {
						assert.Equal(t, unitFileMode, mode, p)
					}
				}
			}
		})
	}
}

// systemctlLike answers is-enabled as systemctl does for a unit without a file: an error, no state.
type systemctlLike struct {
	*fakeSystemd
	root Root
	fail error // returned for units that have a file, when set
}

func (s *systemctlLike) IsEnabled(ctx context.Context, unit string) (bool, error) {
	for _, dir := range []string{"/etc/systemd/system", "/usr/lib/systemd/system"} {
		if _, err := os.Lstat(s.root.HostPath(dir + "/" + unit)); err == nil {
			if s.fail != nil {
				return false, s.fail
			}
			return s.fakeSystemd.IsEnabled(ctx, unit)
		}
	}
	return false, errors.New("Failed to get unit file state for " + unit + ": No such file or directory")
}

func TestApplyConfigNewUnitUnknownToSystemd(t *testing.T) {
	t.Parallel()
	root := Root(t.TempDir())
	sd := &systemctlLike{fakeSystemd: newFakeSystemd(), root: root}
	unit := ign3types.Unit{Name: "new.service", Contents: ptr("[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"), Enabled: ptr(true)}
	old := newMC(t, "rendered-1")
	mc := newMC(t, "rendered-2", withUnit(unit))
	require.NoError(t, ApplyConfig(context.Background(), root, sd, old, mc, ApplyOptions{}))
	assert.True(t, sd.enabled["new.service"], "calls: %q", sd.calls)

	// A unit that has a file and that systemctl cannot answer for is an error, not "disabled".
	sd.fail = errors.New("Failed to connect to bus")
	unit.Contents = ptr("[Service]\nExecStart=/bin/false\n")
	err := ApplyConfig(context.Background(), root, sd, mc, newMC(t, "rendered-3", withUnit(unit)), ApplyOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Failed to connect to bus")
}
