package daemon

import (
	"context"
	"fmt"
	"slices"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"

	"github.com/imagemode/imagemode/render/machineconfig"
)

// Package layering of classic (non-layered) pools: a config's kernelType and extensions become rpm-ostree
// package overrides and requests on the next boot's deployment (the reference's switchKernel and
// applyExtensions). Layered pools get both from their image instead.

// KernelPackages returns the packages of a kernel type (canonicalized: "" is the default kernel), and
// whether the type is known. The default kernel's packages are in the base image; the others are installed
// over their removal.
func KernelPackages(kernelType string) ([]string, bool) {
	switch CanonicalKernelType(kernelType) {
	case KernelTypeDefault:
		return []string{"kernel", "kernel-core", "kernel-modules", "kernel-modules-core", "kernel-modules-extra"}, true
	case KernelTypeRealtime:
		return []string{"kernel-rt-core", "kernel-rt-modules", "kernel-rt-modules-extra", "kernel-rt-kvm"}, true
	case KernelType64kPages:
		return []string{"kernel-64k-core", "kernel-64k-modules", "kernel-64k-modules-core", "kernel-64k-modules-extra"}, true
	}
	return nil, false
}

// ExtensionsPackages returns the packages a list of extensions requires, sorted and without duplicates. An
// extension the project does not support is an error naming it.
func ExtensionsPackages(extensions []string) ([]string, error) {
	var out []string
	for _, e := range extensions {
		pkgs, ok := machineconfig.ExtensionPackages(e)
		if !ok {
			return nil, fmt.Errorf("extension %q is not supported (supported: %s)", e, strings.Join(machineconfig.SupportedExtensions(), ", "))
		}
		out = append(out, pkgs...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// PackageOp is the kind of an rpm-ostree package change.
type PackageOp string

const (
	// PackageOverrideRemove removes base packages and installs others in their place:
	// `rpm-ostree override remove <base…> --install <pkg>…`.
	PackageOverrideRemove PackageOp = "override-remove"
	// PackageOverrideReset restores removed base packages and uninstalls the ones installed in their place:
	// `rpm-ostree override reset <base…> --uninstall <pkg>…`.
	PackageOverrideReset PackageOp = "override-reset"
	// PackageUpdate layers and unlayers packages: `rpm-ostree update --install <pkg>… --uninstall <pkg>…`.
	PackageUpdate PackageOp = "update"
)

// PackageChange is one rpm-ostree call changing the packages of the next boot's deployment.
type PackageChange struct {
	Op PackageOp
	// Base are the base packages removed or reset (override operations only).
	Base []string
	// Install and Uninstall are the packages layered and unlayered.
	Install, Uninstall []string
}

// Argv returns the rpm-ostree arguments of the change (without "rpm-ostree").
func (c PackageChange) Argv() []string {
	var argv []string
	switch c.Op {
	case PackageOverrideRemove:
		argv = append([]string{"override", "remove"}, c.Base...)
	case PackageOverrideReset:
		argv = append([]string{"override", "reset"}, c.Base...)
	default:
		argv = []string{"update"}
	}
	for _, p := range c.Install {
		argv = append(argv, "--install", p)
	}
	for _, p := range c.Uninstall {
		argv = append(argv, "--uninstall", p)
	}
	return argv
}

func (c PackageChange) String() string { return "rpm-ostree " + strings.Join(c.Argv(), " ") }

// Apply runs the change through osu.
func (c PackageChange) Apply(ctx context.Context, osu OSUpdater) error {
	switch c.Op {
	case PackageOverrideRemove:
		return osu.OverrideKernel(ctx, c.Base, c.Install)
	case PackageOverrideReset:
		return osu.ResetKernel(ctx, c.Base, c.Uninstall)
	case PackageUpdate:
		return osu.UpdatePackages(ctx, c.Install, c.Uninstall)
	}
	return fmt.Errorf("unknown package operation %q", c.Op)
}

// PackageChanges returns the rpm-ostree calls that take a deployment set up for config old (nil: the
// bare OS, default kernel and no extensions) to one set up for config new, in order: the kernel switch
// (reset to the default kernel, then override it with the new type's), then the extensions' packages (the
// packages the new extensions require and the old ones did not are installed, the converse uninstalled;
// only packages of supported extensions are touched). Nothing to change is no calls. An unknown kernel type
// or extension is an error naming the config and field.
func PackageChanges(old, new *mcfgv1.MachineConfig) ([]PackageChange, error) {
	if new == nil {
		return nil, fmt.Errorf("planning package changes: %w", ErrNoConfig)
	}
	oldSpec := mcfgv1.MachineConfigSpec{}
	if old != nil {
		oldSpec = old.Spec
	}
	oldKernel, newKernel := CanonicalKernelType(oldSpec.KernelType), CanonicalKernelType(new.Spec.KernelType)
	if _, ok := KernelPackages(oldKernel); !ok {
		return nil, fmt.Errorf("current config %q: spec.kernelType: unsupported value %q", nameOf(old), oldSpec.KernelType)
	}
	if _, ok := KernelPackages(newKernel); !ok {
		return nil, fmt.Errorf("config %q: spec.kernelType: unsupported value %q", new.Name, new.Spec.KernelType)
	}
	var out []PackageChange
	if oldKernel != newKernel {
		base, _ := KernelPackages(KernelTypeDefault)
		if oldKernel != KernelTypeDefault {
			pkgs, _ := KernelPackages(oldKernel)
			out = append(out, PackageChange{Op: PackageOverrideReset, Base: base, Uninstall: pkgs})
		}
		if newKernel != KernelTypeDefault {
			pkgs, _ := KernelPackages(newKernel)
			out = append(out, PackageChange{Op: PackageOverrideRemove, Base: base, Install: pkgs})
		}
	}
	oldPkgs, err := ExtensionsPackages(oldSpec.Extensions)
	if err != nil {
		return nil, fmt.Errorf("current config %q: spec.extensions: %w", nameOf(old), err)
	}
	newPkgs, err := ExtensionsPackages(new.Spec.Extensions)
	if err != nil {
		return nil, fmt.Errorf("config %q: spec.extensions: %w", new.Name, err)
	}
	install, uninstall := minus(newPkgs, oldPkgs), minus(oldPkgs, newPkgs)
	if len(install) > 0 || len(uninstall) > 0 {
		out = append(out, PackageChange{Op: PackageUpdate, Install: install, Uninstall: uninstall})
	}
	return out, nil
}

// minus returns the elements of a not in b, in a's order.
func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// common returns the elements of a also in b, in a's order.
func common(a, b []string) []string { return minus(a, minus(a, b)) }

// VerifyPackages checks that deployment d (the staged one) carries config new's kernel and extensions
// after changes from config old: every package new requires is requested, none that only old required is;
// the default kernel's packages are removed exactly when new's kernel type is not the default. A mismatch is
// an error naming the deployment and the packages.
func VerifyPackages(d *Deployment, old, new *mcfgv1.MachineConfig) error {
	if d == nil {
		return fmt.Errorf("verifying packages of config %q: no staged deployment", nameOf(new))
	}
	oldSpec := mcfgv1.MachineConfigSpec{}
	if old != nil {
		oldSpec = old.Spec
	}
	want, err := ExtensionsPackages(new.Spec.Extensions)
	if err != nil {
		return fmt.Errorf("config %q: spec.extensions: %w", new.Name, err)
	}
	gone, err := ExtensionsPackages(oldSpec.Extensions)
	if err != nil {
		return fmt.Errorf("current config %q: spec.extensions: %w", nameOf(old), err)
	}
	gone = minus(gone, want)
	newKernel := CanonicalKernelType(new.Spec.KernelType)
	defaultPkgs, _ := KernelPackages(KernelTypeDefault)
	var wantRemoved, wantKept []string
	if newKernel != KernelTypeDefault {
		pkgs, ok := KernelPackages(newKernel)
		if !ok {
			return fmt.Errorf("config %q: spec.kernelType: unsupported value %q", new.Name, new.Spec.KernelType)
		}
		want = append(want, pkgs...)
		wantRemoved = defaultPkgs
	} else {
		wantKept = defaultPkgs
	}
	if oldKernel := CanonicalKernelType(oldSpec.KernelType); oldKernel != newKernel {
		pkgs, _ := KernelPackages(oldKernel)
		if oldKernel != KernelTypeDefault {
			gone = append(gone, pkgs...)
		}
	}
	var problems []string
	if m := minus(want, d.RequestedPackages); len(m) > 0 {
		problems = append(problems, "packages not requested: "+strings.Join(m, " "))
	}
	if m := common(gone, d.RequestedPackages); len(m) > 0 {
		problems = append(problems, "packages still requested: "+strings.Join(m, " "))
	}
	if m := minus(wantRemoved, d.RequestedBaseRemovals); len(m) > 0 {
		problems = append(problems, "base packages not removed: "+strings.Join(m, " "))
	}
	if m := common(wantKept, d.RequestedBaseRemovals); len(m) > 0 {
		problems = append(problems, "base packages still removed: "+strings.Join(m, " "))
	}
	if len(problems) > 0 {
		return fmt.Errorf("deployment %s does not carry config %q's kernel type and extensions: %s", d.ID, new.Name, strings.Join(problems, "; "))
	}
	return nil
}
