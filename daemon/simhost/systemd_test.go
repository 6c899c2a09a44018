package simhost

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeHostFile writes content at host path p of h's root.
func writeHostFile(t *testing.T, h *Host, p, content string) {
	t.Helper()
	full := h.Root().HostPath(p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func newTestHost(t *testing.T, opts Options) *Host {
	t.Helper()
	h, err := New(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestSystemdEnableDisablePresetMask(t *testing.T) {
	ctx := context.Background()
	h := newTestHost(t, Options{})
	writeHostFile(t, h, "/usr/lib/systemd/system/vendor.service", "[Unit]\nDescription=v\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n")
	writeHostFile(t, h, "/etc/systemd/system/local.service", "[Service]\nExecStart=/bin/true\n\n[Install]\n# a comment\nWantedBy=multi-user.target graphical.target\nRequiredBy=crio.service\n")
	writeHostFile(t, h, "/usr/lib/systemd/system/static.service", "[Service]\nExecStart=/bin/true\n")
	writeHostFile(t, h, "/usr/lib/systemd/system/getty@.service", "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=getty.target\n")
	sd := h.Systemd()
	isEnabled := func(unit string) bool {
		t.Helper()
		ok, err := sd.IsEnabled(ctx, unit)
		if err != nil {
			t.Fatalf("IsEnabled(%s): %v", unit, err)
		}
		return ok
	}
	link := func(p string) string {
		t.Helper()
		target, err := os.Readlink(h.Root().HostPath(p))
		if err != nil {
			return ""
		}
		return target
	}

	if isEnabled("vendor.service") {
		t.Fatal("vendor.service enabled before Enable")
	}
	// "vendor" without suffix is vendor.service, as with systemctl.
	if err := sd.Enable(ctx, "vendor", "local.service", "getty@tty1.service"); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{
		"/etc/systemd/system/multi-user.target.wants/vendor.service": "/usr/lib/systemd/system/vendor.service",
		"/etc/systemd/system/multi-user.target.wants/local.service":  "/etc/systemd/system/local.service",
		"/etc/systemd/system/graphical.target.wants/local.service":   "/etc/systemd/system/local.service",
		"/etc/systemd/system/crio.service.requires/local.service":    "/etc/systemd/system/local.service",
		"/etc/systemd/system/getty.target.wants/getty@tty1.service":  "/usr/lib/systemd/system/getty@.service",
	} {
		if got := link(p); got != want {
			t.Errorf("link %s -> %q, want %q", p, got, want)
		}
	}
	if !isEnabled("vendor.service") || !isEnabled("local.service") || !isEnabled("getty@tty1.service") {
		t.Error("enabled units not reported enabled")
	}

	// No [Install]: enabling changes nothing and is not an error.
	if err := sd.Enable(ctx, "static.service"); err != nil {
		t.Errorf("enabling a unit without [Install]: %v", err)
	}
	if isEnabled("static.service") {
		t.Error("static.service reported enabled")
	}

	// Unknown unit: systemctl's error.
	err := sd.Enable(ctx, "nosuch.service")
	if err == nil || !strings.Contains(err.Error(), "Unit file nosuch.service does not exist.") || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("enabling an unknown unit: %v", err)
	}
	if _, err := sd.IsEnabled(ctx, "nosuch.service"); err == nil {
		t.Error("IsEnabled of an unknown unit: no error")
	}
	if err := sd.Enable(ctx, "../etc/passwd"); err == nil {
		t.Error("enabling a path: no error")
	}

	if err := sd.Disable(ctx, "local.service"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/etc/systemd/system/multi-user.target.wants/local.service",
		"/etc/systemd/system/graphical.target.wants/local.service", "/etc/systemd/system/crio.service.requires/local.service"} {
		if link(p) != "" {
			t.Errorf("%s still there after disable", p)
		}
	}
	if isEnabled("local.service") || !isEnabled("vendor.service") {
		t.Error("disable changed the wrong units")
	}

	// Masked: a link to /dev/null in /etc; never enabled, cannot be enabled.
	if err := os.Symlink("/dev/null", h.Root().HostPath("/etc/systemd/system/vendor.service")); err != nil {
		t.Fatal(err)
	}
	if isEnabled("vendor.service") {
		t.Error("masked unit reported enabled")
	}
	if err := sd.Enable(ctx, "vendor.service"); err == nil || !strings.Contains(err.Error(), "masked") {
		t.Errorf("enabling a masked unit: %v", err)
	}
	if err := os.Remove(h.Root().HostPath("/etc/systemd/system/vendor.service")); err != nil {
		t.Fatal(err)
	}

	// Preset: the first matching rule, in file name order, decides; no rule disables.
	writeHostFile(t, h, "/usr/lib/systemd/system-preset/50-local.preset", "# ours\nenable local.service\n")
	writeHostFile(t, h, "/usr/lib/systemd/system-preset/99-default.preset", "disable *\nenable vendor.service\n")
	if err := sd.Preset(ctx, "local.service", "vendor.service"); err != nil {
		t.Fatal(err)
	}
	if !isEnabled("local.service") || isEnabled("vendor.service") {
		t.Errorf("after preset: local enabled=%v (want true), vendor enabled=%v (want false)",
			isEnabled("local.service"), isEnabled("vendor.service"))
	}

	if err := sd.DaemonReload(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sd.Restart(ctx, "crio.service"); err != nil {
		t.Fatal(err)
	}
	if err := sd.Reload(ctx, "crio.service"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"systemctl enable vendor local.service getty@tty1.service",
		"systemctl enable static.service",
		"systemctl enable nosuch.service",
		"systemctl enable ../etc/passwd",
		"systemctl disable local.service",
		"systemctl enable vendor.service",
		"systemctl preset local.service vendor.service",
		"systemctl daemon-reload",
		"systemctl restart crio.service",
		"systemctl reload crio.service",
	}
	if got := h.Calls(); !slices.Equal(got, want) {
		t.Errorf("calls:\n got %q\nwant %q", got, want)
	}
}

func TestRebootIsRecordedAndBootClearsIt(t *testing.T) {
	ctx := context.Background()
	var rebooted []string
	dir := t.TempDir()
	h, err := New(dir, Options{OnReboot: func(reason string) { rebooted = append(rebooted, reason) }})
	if err != nil {
		t.Fatal(err)
	}
	before, err := h.BootID()
	if err != nil || before == "" {
		t.Fatalf("boot id %q, %v", before, err)
	}
	writeHostFile(t, h, "/run/transient", "x")
	if _, ok := h.PendingReboot(); ok {
		t.Fatal("reboot pending on a fresh host")
	}
	if err := h.Systemd().Reboot(ctx, "applying rendered-worker-2"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rebooted, []string{"applying rendered-worker-2"}) {
		t.Errorf("OnReboot calls %q", rebooted)
	}
	// The pending reboot survives a restart of whoever holds the host.
	again, err := New(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if reason, ok := again.PendingReboot(); !ok || reason != "applying rendered-worker-2" {
		t.Errorf("pending reboot after reopening: %q %v", reason, ok)
	}
	if err := again.Boot(); err != nil {
		t.Fatal(err)
	}
	after, _ := h.BootID()
	if after == before || after == "" {
		t.Errorf("boot id %q after boot, was %q", after, before)
	}
	if _, ok := h.PendingReboot(); ok {
		t.Error("reboot still pending after Boot")
	}
	if _, err := os.Lstat(h.Root().HostPath("/run/transient")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("/run not cleared by Boot: %v", err)
	}
	if got := h.Calls(); !slices.Equal(got, []string{"reboot: applying rendered-worker-2"}) {
		t.Errorf("calls %q", got)
	}
}
