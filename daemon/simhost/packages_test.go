package simhost

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestPackagesStagedAndBooted drives the package operations: they stage a copy of the booted deployment,
// stack on a staged one, are refused as rpm-ostree refuses them, survive a rebase and boot.
func TestPackagesStagedAndBooted(t *testing.T) {
	ctx := context.Background()
	h, err := New(t.TempDir(), Options{Kargs: []string{"rw"}})
	if err != nil {
		t.Fatal(err)
	}
	osu := h.OS()
	dA, dB := digest.FromString("image A"), digest.FromString("image B")
	imgA, imgB := "registry.example/os@"+dA.String(), "registry.example/os@"+dB.String()
	seedImage(t, h, dA, "A.1", map[string]string{"usr/bin/a": "A"})
	if err := osu.UpdatePackages(ctx, []string{"usbguard"}, nil); err == nil {
		t.Fatal("package change on an unprovisioned host succeeded")
	}
	if err := osu.Rebase(ctx, imgA, ""); err != nil {
		t.Fatal(err)
	}
	if err := h.Boot(); err != nil {
		t.Fatal(err)
	}
	base := []string{"kernel", "kernel-core"}
	rt := []string{"kernel-rt-core", "kernel-rt-kvm"}
	if err := osu.OverrideKernel(ctx, base, rt); err != nil {
		t.Fatal(err)
	}
	if err := osu.UpdatePackages(ctx, []string{"usbguard", "sysstat"}, nil); err != nil {
		t.Fatal(err)
	}
	st, err := osu.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Staged == nil || st.Staged.Image() != imgA || st.Staged.ID == st.Booted.ID {
		t.Fatalf("no copy of the booted deployment staged: %+v", st.Deployments)
	}
	wantPkgs := []string{"kernel-rt-core", "kernel-rt-kvm", "sysstat", "usbguard"}
	if !slices.Equal(st.Staged.RequestedPackages, wantPkgs) || !slices.Equal(st.Staged.RequestedBaseRemovals, base) {
		t.Fatalf("staged packages %q removals %q", st.Staged.RequestedPackages, st.Staged.RequestedBaseRemovals)
	}
	if len(st.Booted.RequestedPackages) != 0 || len(st.Booted.RequestedBaseRemovals) != 0 {
		t.Fatalf("booted deployment changed: %+v", st.Booted)
	}
	// Refusals change nothing but the log.
	for name, call := range map[string]func() error{
		"install twice":        func() error { return osu.UpdatePackages(ctx, []string{"usbguard"}, nil) },
		"uninstall absent":     func() error { return osu.UpdatePackages(ctx, nil, []string{"libreswan"}) },
		"remove twice":         func() error { return osu.OverrideKernel(ctx, base, nil) },
		"reset not removed":    func() error { return osu.ResetKernel(ctx, []string{"kernel-modules"}, nil) },
		"uninstall in a reset": func() error { return osu.ResetKernel(ctx, base, []string{"kernel-64k-core"}) },
	} {
		if err := call(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if st2, _ := osu.Status(ctx); !slices.Equal(st2.Staged.RequestedPackages, wantPkgs) {
		t.Fatalf("refused change altered the staged deployment: %q", st2.Staged.RequestedPackages)
	}
	if err := h.Boot(); err != nil {
		t.Fatal(err)
	}
	st, _ = osu.Status(ctx)
	if st.Staged != nil || !slices.Equal(st.Booted.RequestedPackages, wantPkgs) || !slices.Equal(st.Booted.RequestedBaseRemovals, base) {
		t.Fatalf("after boot: %+v", st.Deployments)
	}
	// A rebase carries the requests; a reset and an uninstall undo them. (Unused content is dropped at
	// every change, so image B is seeded only now.)
	seedImage(t, h, dB, "B.1", map[string]string{"usr/bin/b": "B"})
	if err := osu.Rebase(ctx, imgB, ""); err != nil {
		t.Fatal(err)
	}
	if err := osu.ResetKernel(ctx, base, rt); err != nil {
		t.Fatal(err)
	}
	if err := osu.UpdatePackages(ctx, nil, []string{"sysstat"}); err != nil {
		t.Fatal(err)
	}
	if err := h.Boot(); err != nil {
		t.Fatal(err)
	}
	st, _ = osu.Status(ctx)
	if st.BootedImage() != imgB || !slices.Equal(st.Booted.RequestedPackages, []string{"usbguard"}) || len(st.Booted.RequestedBaseRemovals) != 0 {
		t.Fatalf("after reset and boot: %+v", st.Deployments)
	}
	calls := strings.Join(h.Calls(), "\n")
	for _, want := range []string{
		"rpm-ostree override remove kernel kernel-core --install kernel-rt-core --install kernel-rt-kvm",
		"rpm-ostree update --install usbguard --install sysstat",
		"rpm-ostree override reset kernel kernel-core --uninstall kernel-rt-core --uninstall kernel-rt-kvm",
		"rpm-ostree update --uninstall sysstat",
	} {
		if !strings.Contains(calls, want) {
			t.Errorf("calls lack %q:\n%s", want, calls)
		}
	}
}
