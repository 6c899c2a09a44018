package simnode_test

import (
	"context"
	"slices"
	"testing"

	"github.com/imagemode/imagemode/daemon"
	"github.com/imagemode/imagemode/local"
)

// testKernelExtensions drives a classic (non-layered) pool through a realtime kernel with the usbguard
// extension and back: each change is one reboot into a deployment whose package requests and base
// removals carry the config's kernel and extensions.
func testKernelExtensions(t *testing.T, ctx context.Context, env *local.Env) {
	c := env.ControlPlane.Client
	ownPool(t, ctx, c, "rt")
	node := startNodeSpec(t, ctx, env, nodeSpec{name: "rt-0", pools: []string{"rt"}, delete: true})
	cfg0 := poolTarget(t, ctx, c, "rt", "")
	waitNode(t, ctx, c, node, "the first config", doneOn(cfg0))
	reboots := node.Reboots()

	mc := roleConfig("50-rt-kernel", "rt", `{"ignition":{"version":"3.4.0"}}`)
	mc.Spec.KernelType, mc.Spec.Extensions = daemon.KernelTypeRealtime, []string{"usbguard"}
	if err := c.Create(ctx, mc); err != nil {
		t.Fatal(err)
	}
	cfg1 := poolTarget(t, ctx, c, "rt", cfg0)
	waitNode(t, ctx, c, node, "the realtime kernel", doneOn(cfg1))
	if got := node.Reboots(); got != reboots+1 {
		t.Errorf("%d reboots for the realtime kernel, want 1", got-reboots)
	}
	defaultPkgs, _ := daemon.KernelPackages(daemon.KernelTypeDefault)
	rtPkgs, _ := daemon.KernelPackages(daemon.KernelTypeRealtime)
	st, err := node.Host.OS().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(append(slices.Clone(rtPkgs), "usbguard")))
	if st.Staged != nil || !slices.Equal(st.Booted.RequestedPackages, want) ||
		!slices.Equal(slices.Sorted(slices.Values(st.Booted.RequestedBaseRemovals)), slices.Sorted(slices.Values(defaultPkgs))) {
		t.Fatalf("booted deployment after the realtime kernel: staged %v, requested %q, removed %q; want requested %q, removed %q",
			st.Staged != nil, st.Booted.RequestedPackages, st.Booted.RequestedBaseRemovals, want, defaultPkgs)
	}

	if err := c.Delete(ctx, mc); err != nil {
		t.Fatal(err)
	}
	cfg2 := poolTarget(t, ctx, c, "rt", cfg1)
	waitNode(t, ctx, c, node, "back to the default kernel", doneOn(cfg2))
	if got := node.Reboots(); got != reboots+2 {
		t.Errorf("%d reboots in all, want 2", got-reboots)
	}
	if st, err = node.Host.OS().Status(ctx); err != nil {
		t.Fatal(err)
	}
	if st.Staged != nil || len(st.Booted.RequestedPackages) != 0 || len(st.Booted.RequestedBaseRemovals) != 0 {
		t.Errorf("booted deployment after the default kernel: staged %v, requested %q, removed %q; want none",
			st.Staged != nil, st.Booted.RequestedPackages, st.Booted.RequestedBaseRemovals)
	}
	reset := daemon.PackageChange{Op: daemon.PackageOverrideReset, Base: defaultPkgs, Uninstall: rtPkgs}.String()
	if n := countCalls(node, reset); n != 1 {
		t.Errorf("%q run %d times, want 1", reset, n)
	}
	if n := countCalls(node, "rpm-ostree update --uninstall usbguard"); n != 1 {
		t.Errorf("usbguard uninstalled %d times, want 1", n)
	}
}
