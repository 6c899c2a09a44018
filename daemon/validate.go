package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"

	"github.com/imagemode/imagemode/render/machineconfig"
)

// ValidateOnDisk checks that the host holds what mc says (the reference's validateOnDiskState, without the
// kernel arguments and booted image, which the agent checks): every file exists with its decoded contents
// and permission bits; every unit's drop-ins and file have their contents (mode 0644), a masked unit is a
// symlink to /dev/null, and a unit that says whether it is enabled is so according to sd. The kubelet CA
// and the internal registry pull secret are not checked: the daemon rewrites them itself.
//
// The first difference in host path order is returned as a *DriftError; nil means the host matches. Other
// errors (a config that does not parse, systemd failing) are returned as they are.
func ValidateOnDisk(ctx context.Context, root Root, sd Systemd, mc *mcfgv1.MachineConfig) error {
	if mc == nil {
		return fmt.Errorf("validating on-disk state: %w", ErrNoConfig)
	}
	ign, err := machineconfig.ParseIgnition(mc.Spec.Config.Raw)
	if err != nil {
		return fmt.Errorf("validating on-disk state: parsing config %q: %w", mc.Name, err)
	}
	type check struct {
		path string
		run  func() error
	}
	var checks []check
	for _, f := range ign.Storage.Files {
		if f.Path == KubeletCAPath || f.Path == InternalRegistryPullSecretPath {
			continue
		}
		data, err := DecodeFileContents(f)
		if err != nil {
			return fmt.Errorf("validating on-disk state: decoding file %s of config %q: %w", f.Path, mc.Name, err)
		}
		mode := fs.FileMode(defaultFileMode)
		if f.Mode != nil {
			mode = fs.FileMode(*f.Mode)
		}
		checks = append(checks, check{f.Path, func() error { return checkFile(root, f.Path, data, mode) }})
	}
	for _, u := range ign.Systemd.Units {
		for _, d := range u.Dropins {
			p := DropinPath(u.Name, d.Name)
			contents := deref(d.Contents)
			checks = append(checks, check{p, func() error {
				if contents == "" {
					// Empty drop-ins are deleted; one left empty is as good.
					if _, err := root.Lstat(p); missing(err) {
						return nil
					}
				}
				return checkFile(root, p, []byte(contents), unitFileMode)
			}})
		}
		p := UnitPath(u.Name)
		switch {
		case u.Mask != nil && *u.Mask:
			checks = append(checks, check{p, func() error {
				if target, err := root.Readlink(p); err != nil || target != maskTarget {
					return &DriftError{Path: p, Reason: fmt.Sprintf("state mismatch for unit %q: expected masked (a symlink to %s)", u.Name, maskTarget)}
				}
				return nil
			}})
			continue
		case deref(u.Contents) != "":
			contents := []byte(*u.Contents)
			checks = append(checks, check{p, func() error { return checkFile(root, p, contents, unitFileMode) }})
		}
		if u.Enabled != nil {
			want := *u.Enabled
			checks = append(checks, check{p, func() error {
				got, err := sd.IsEnabled(ctx, u.Name)
				if err != nil {
					return fmt.Errorf("validating on-disk state: checking whether unit %s is enabled: %w", u.Name, err)
				}
				if got != want {
					return &DriftError{Path: p, Reason: fmt.Sprintf("state mismatch for unit %q: expected %s, found %s", u.Name, enablement(want), enablement(got))}
				}
				return nil
			}})
		}
	}
	sort.SliceStable(checks, func(i, j int) bool { return checks[i].path < checks[j].path })
	for _, c := range checks {
		if err := c.run(); err != nil {
			return err
		}
	}
	return nil
}

func enablement(enabled bool) string {
	if enabled {
		return "enabled"
	}
	return "disabled"
}

// checkFile compares the file at host path p with the content and permission bits a config gives it.
func checkFile(root Root, p string, want []byte, mode fs.FileMode) error {
	fi, err := root.Lstat(p)
	switch {
	case missing(err):
		return &DriftError{Path: p, Reason: fmt.Sprintf("file %q does not exist", p)}
	case err != nil:
		return fmt.Errorf("validating on-disk state: inspecting %s: %w", p, err)
	case !fi.Mode().IsRegular():
		return &DriftError{Path: p, Reason: fmt.Sprintf("file %q is not a regular file (%v)", p, fi.Mode().Type())}
	}
	data, err := root.ReadFile(p)
	if err != nil {
		return fmt.Errorf("validating on-disk state: reading %s: %w", p, err)
	}
	if !bytes.Equal(data, want) {
		return &DriftError{Path: p, Reason: fmt.Sprintf("content mismatch for file %q", p)}
	}
	if got := fi.Mode().Perm(); got != mode.Perm() {
		return &DriftError{Path: p, Reason: fmt.Sprintf("mode mismatch for file: %q; expected: %v; received: %v", p, mode.Perm(), got)}
	}
	return nil
}

// CheckPaths refuses a config that names a host path configs may not manage, before anything else looks at
// it (Ignition's own parser only says "path is not fully simplified", without the path): every
// storage.files, storage.links and storage.directories path and every systemd unit name, read leniently from
// the raw Ignition JSON. A path must be absolute and, once cleaned (so ".." cannot climb out of the host
// root), under a directory configs manage (render/machineconfig.ManagedPath); a unit name must not contain a
// "/". The error names the config, the field and the path, and wraps ErrUnmanagedPath.
func CheckPaths(mc *mcfgv1.MachineConfig) error {
	if mc == nil || len(mc.Spec.Config.Raw) == 0 {
		return nil
	}
	var raw struct {
		Storage struct {
			Files, Links, Directories []struct {
				Path string `json:"path"`
			}
		} `json:"storage"`
		Systemd struct {
			Units []struct {
				Name string `json:"name"`
			} `json:"units"`
		} `json:"systemd"`
	}
	if err := json.Unmarshal(mc.Spec.Config.Raw, &raw); err != nil {
		return nil //nolint:nilerr // not JSON this check can read: the Ignition parser reports it
	}
	for _, kind := range []struct {
		field   string
		entries []struct {
			Path string `json:"path"`
		}
	}{{"files", raw.Storage.Files}, {"links", raw.Storage.Links}, {"directories", raw.Storage.Directories}} {
		for i, e := range kind.entries {
			cleaned := path.Clean(e.Path)
			if !path.IsAbs(e.Path) || !machineconfig.ManagedPath(cleaned) {
				return fmt.Errorf("config %s: spec.config.storage.%s[%d].path %q (%s): %w", mc.Name, kind.field, i, e.Path, cleaned, ErrUnmanagedPath)
			}
		}
	}
	for i, u := range raw.Systemd.Units {
		if strings.Contains(u.Name, "/") || u.Name == ".." {
			return fmt.Errorf("config %s: spec.config.systemd.units[%d].name %q: %w", mc.Name, i, u.Name, ErrUnmanagedPath)
		}
	}
	return nil
}
