package layering

import (
	"fmt"
	"io/fs"
	"testing"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseInstall(t *testing.T) {
	t.Parallel()
	got := parseInstall(`[Unit]
WantedBy=not-install.target
[Install]
# a comment
; another
WantedBy=multi-user.target \
  graphical.target
RequiredBy=a.target
RequiredBy=
RequiredBy=b.target
Alias=x.service
  DefaultInstance = tty1
[Service]
Alias=not-install.service
`)
	assert.Equal(t, map[string][]string{
		"WantedBy":        {"multi-user.target", "graphical.target"},
		"RequiredBy":      {"b.target"},
		"Alias":           {"x.service"},
		"DefaultInstance": {"tty1"},
	}, got)
}

func TestUnitContent(t *testing.T) {
	t.Parallel()
	units := []ign3types.Unit{
		{Name: "a.service", Enabled: ptr(true), Contents: ptr("[Install]\nWantedBy=multi-user.target\nRequiredBy=b.target\nUpheldBy=c.target\nAlias=alias-a.service\nAlso=b.service os.service\n")},
		{Name: "b.service", Contents: ptr("[Install]\nWantedBy=default.target\n")}, // enabled through a's Also=
		{Name: "getty@.service", Enabled: ptr(true), Contents: ptr("[Install]\nWantedBy=getty.target\nDefaultInstance=tty1\n")},
		{Name: "plain@.service", Enabled: ptr(true), Contents: ptr("[Install]\nWantedBy=multi-user.target\n")}, // no instance: nothing
		{Name: "noinstall.service", Enabled: ptr(true), Contents: ptr("[Service]\nExecStart=/bin/true\n")},
		{Name: "off.service", Enabled: ptr(false), Contents: ptr("[Install]\nWantedBy=multi-user.target\n")},
		{Name: "os-off.service", Enabled: ptr(false)},
		{Name: "masked.service", Enabled: ptr(true), Mask: ptr(true), Contents: ptr("ignored"),
			Dropins: []ign3types.Dropin{{Name: "x.conf", Contents: ptr("[Unit]\n")}, {Name: "nil.conf"}}},
	}
	r, err := unitContent(units, "spec.config.systemd.units")
	require.NoError(t, err)
	var got []string
	for _, e := range r.entries {
		switch {
		case e.mode&fs.ModeSymlink != 0:
			got = append(got, fmt.Sprintf("%s -> %s (%s)", e.path, e.target, e.field))
		default:
			got = append(got, fmt.Sprintf("%s %v (%s)", e.path, e.mode, e.field))
		}
	}
	assert.Equal(t, []string{
		"/etc/systemd/system/a.service -rw-r--r-- (spec.config.systemd.units[0].contents)",
		"/etc/systemd/system/b.service -rw-r--r-- (spec.config.systemd.units[1].contents)",
		"/etc/systemd/system/getty@.service -rw-r--r-- (spec.config.systemd.units[2].contents)",
		"/etc/systemd/system/plain@.service -rw-r--r-- (spec.config.systemd.units[3].contents)",
		"/etc/systemd/system/noinstall.service -rw-r--r-- (spec.config.systemd.units[4].contents)",
		"/etc/systemd/system/off.service -rw-r--r-- (spec.config.systemd.units[5].contents)",
		"/etc/systemd/system/masked.service.d/x.conf -rw-r--r-- (spec.config.systemd.units[7].dropins[0].contents)",
		"/etc/systemd/system/masked.service -> /dev/null (spec.config.systemd.units[7].mask)",
		"/etc/systemd/system/multi-user.target.wants/a.service -> /etc/systemd/system/a.service (spec.config.systemd.units[0].enabled)",
		"/etc/systemd/system/b.target.requires/a.service -> /etc/systemd/system/a.service (spec.config.systemd.units[0].enabled)",
		"/etc/systemd/system/c.target.upholds/a.service -> /etc/systemd/system/a.service (spec.config.systemd.units[0].enabled)",
		"/etc/systemd/system/alias-a.service -> /etc/systemd/system/a.service (spec.config.systemd.units[0].enabled)",
		"/etc/systemd/system/getty.target.wants/getty@tty1.service -> /etc/systemd/system/getty@.service (spec.config.systemd.units[2].enabled)",
		"/etc/systemd/system/default.target.wants/b.service -> /etc/systemd/system/b.service (spec.config.systemd.units[0].enabled)",
	}, got)
	assert.Equal(t, []string{"os.service"}, r.enable, "Also= of a unit the config does not ship goes to systemctl")
	assert.Equal(t, []string{"os-off.service"}, r.disable)
}

func TestValidUnitName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"kubelet.service": true, "getty@tty1.service": true, `dev-disk-by\x2duuid.mount`: true, "a:b_c-d.socket": true,
		"": false, "noext": false, ".service": false, "a.": false, "a b.service": false, "../x.service": false,
		"a/b.service": false, "x';rm -rf /;'.service": false,
	} {
		assert.Equal(t, want, validUnitName(name), name)
	}
}
