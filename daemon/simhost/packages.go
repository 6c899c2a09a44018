package simhost

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/imagemode/imagemode/daemon"
)

// Package layering: the simulated deployments record the packages requested and the base packages removed
// (rpm-ostree's origin), as `rpm-ostree status --json` reports them; the host's tree is not changed.

// OverrideKernel removes the base packages remove and installs install in their place on the staged
// deployment (a copy of the booted one is staged when none is). Removing a package already removed, or
// installing one already requested, is an error, as with rpm-ostree.
func (o *osUpdater) OverrideKernel(ctx context.Context, remove, install []string) error {
	c := daemon.PackageChange{Op: daemon.PackageOverrideRemove, Base: remove, Install: install}
	return o.changePackages(c, func(d *deployment) error {
		if len(remove) == 0 {
			return fmt.Errorf("no packages to remove")
		}
		var err error
		if d.BaseRemovals, err = addAll(d.BaseRemovals, remove, "already removed"); err != nil {
			return err
		}
		d.Packages, err = addAll(d.Packages, install, "already requested")
		return err
	})
}

// ResetKernel restores the removed base packages reset and uninstalls uninstall on the staged deployment
// (a copy of the booted one is staged when none is). Resetting a package that is not removed, or
// uninstalling one not requested, is an error, as with rpm-ostree.
func (o *osUpdater) ResetKernel(ctx context.Context, reset, uninstall []string) error {
	c := daemon.PackageChange{Op: daemon.PackageOverrideReset, Base: reset, Uninstall: uninstall}
	return o.changePackages(c, func(d *deployment) error {
		if len(reset) == 0 {
			return fmt.Errorf("no packages to reset")
		}
		var err error
		if d.BaseRemovals, err = removeAll(d.BaseRemovals, reset, "no override for"); err != nil {
			return err
		}
		d.Packages, err = removeAll(d.Packages, uninstall, "not requested:")
		return err
	})
}

// UpdatePackages requests install and drops the requests for uninstall on the staged deployment (a copy
// of the booted one is staged when none is). Installing a package already requested, or uninstalling one
// not requested, is an error, as with rpm-ostree. No packages changes nothing.
func (o *osUpdater) UpdatePackages(ctx context.Context, install, uninstall []string) error {
	if len(install) == 0 && len(uninstall) == 0 {
		return nil
	}
	c := daemon.PackageChange{Op: daemon.PackageUpdate, Install: install, Uninstall: uninstall}
	return o.changePackages(c, func(d *deployment) error {
		var err error
		if d.Packages, err = removeAll(d.Packages, uninstall, "not requested:"); err != nil {
			return err
		}
		d.Packages, err = addAll(d.Packages, install, "already requested")
		return err
	})
}

// changePackages logs c and applies fn to the staged deployment, or to a copy of the booted one staged for
// it. On failure nothing but the log changes.
func (o *osUpdater) changePackages(c daemon.PackageChange, fn func(d *deployment) error) error {
	return o.h.update(func(s *state) error {
		s.Calls = append(s.Calls, c.String())
		d := s.Staged.clone()
		if d == nil {
			if s.Booted == nil {
				return fmt.Errorf("%s: %w", c, daemon.ErrNoBootedDeployment)
			}
			d = s.Booted.clone()
			d.Timestamp = time.Now().Unix()
			d.Serial = s.nextSerial(d.Checksum)
			d.ID = fmt.Sprintf("%s-%s.%d", osName, d.Checksum, d.Serial)
		}
		if err := fn(d); err != nil {
			return fmt.Errorf("%s: %w", c, err)
		}
		s.Staged = d
		return nil
	})
}

// addAll returns set (sorted) with pkgs added; one already in it is an error.
func addAll(set, pkgs []string, already string) ([]string, error) {
	out := slices.Clone(set)
	for _, p := range pkgs {
		if slices.Contains(out, p) {
			return nil, fmt.Errorf("package %s %s", p, already)
		}
		out = append(out, p)
	}
	slices.Sort(out)
	return out, nil
}

// removeAll returns set without pkgs; one not in it is an error.
func removeAll(set, pkgs []string, missing string) ([]string, error) {
	out := slices.Clone(set)
	for _, p := range pkgs {
		i := slices.Index(out, p)
		if i < 0 {
			return nil, fmt.Errorf("%s package %s", missing, p)
		}
		out = slices.Delete(out, i, i+1)
	}
	return out, nil
}
