package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
)

// SystemdUnitDir is where configs' units and drop-ins are written.
const SystemdUnitDir = "/etc/systemd/system"

// maskTarget is what a masked unit's file links to.
const maskTarget = "/dev/null"

// unitFileMode is the mode of unit and drop-in files.
const unitFileMode fs.FileMode = 0o644

// UnitPath returns the host path of a unit's file.
func UnitPath(unit string) string { return path.Join(SystemdUnitDir, unit) }

// DropinPath returns the host path of a unit's drop-in.
func DropinPath(unit, dropin string) string { return path.Join(SystemdUnitDir, unit+".d", dropin) }

// checkUnitNames refuses unit and drop-in names that are not plain file names: they would lead out of
// SystemdUnitDir.
func checkUnitNames(u ign3types.Unit) error {
	bad := func(n string) bool { return n == "" || n == "." || n == ".." || strings.Contains(n, "/") }
	if bad(u.Name) {
		return fmt.Errorf("name %q: not a unit file name", u.Name)
	}
	for _, d := range u.Dropins {
		if bad(d.Name) {
			return fmt.Errorf("unit %s: drop-in name %q: not a file name", u.Name, d.Name)
		}
	}
	return nil
}

func unitsByName(units []ign3types.Unit) map[string]ign3types.Unit {
	out := make(map[string]ign3types.Unit, len(units))
	for _, u := range units {
		out[u.Name] = u
	}
	return out
}

// unitSession writes units and collects what systemd must do afterwards: reload once if any unit file
// changed, then enable and disable units.
type unitSession struct {
	root    Root
	sd      Systemd
	force   bool
	changed bool
	enable  []string
	disable []string
}

// write makes a unit's files what u says (the reference's writeUnit):
//   - a drop-in with empty contents is deleted, others are written;
//   - mask: true replaces the unit file with a symlink to /dev/null (its enablement is left alone);
//   - contents are written; a unit enabled at that moment is disabled first, since its [Install] section
//     may change, and enabled again afterwards unless u says otherwise;
//   - an explicit mask: false removes a mask symlink;
//   - enabled, when set, is applied once the units are reloaded; nil leaves the enablement as it is.
//
// Files already as u says are not rewritten and, unless forced, their unit is not disabled first; enabled
// is applied only when systemd reports otherwise.
func (s *unitSession) write(ctx context.Context, u ign3types.Unit) error {
	for _, d := range u.Dropins {
		p := DropinPath(u.Name, d.Name)
		if deref(d.Contents) == "" {
			fi, err := s.root.Lstat(p)
			if err != nil && !missing(err) {
				return fmt.Errorf("inspecting drop-in %s: %w", p, err)
			}
			if fi == nil {
				continue
			}
			if err := s.root.Delete(p); err != nil {
				return fmt.Errorf("drop-in %s: %w", d.Name, err)
			}
			s.changed = true
			continue
		}
		if !s.force && s.fileIs(p, []byte(*d.Contents)) {
			continue
		}
		if err := s.root.WriteFile(p, []byte(*d.Contents), unitFileMode, 0, 0); err != nil {
			return fmt.Errorf("drop-in %s: %w", d.Name, err)
		}
		s.changed = true
	}

	p := UnitPath(u.Name)
	if u.Mask != nil && *u.Mask {
		if !s.force && s.isMask(p) {
			return nil
		}
		if err := s.root.WriteSymlink(p, maskTarget); err != nil {
			return fmt.Errorf("masking: %w", err)
		}
		s.changed = true
		return nil
	}

	// now is the unit's enablement when known: systemd was asked, and a unit disabled here is disabled.
	var now *bool
	switch contents := deref(u.Contents); {
	case contents != "" && (s.force || !s.fileIs(p, []byte(contents))):
		enabled, err := s.isEnabled(ctx, u.Name)
		if err != nil {
			return fmt.Errorf("checking whether it is enabled: %w", err)
		}
		if enabled {
			if err := s.sd.Disable(ctx, u.Name); err != nil {
				return fmt.Errorf("disabling before rewriting: %w", err)
			}
		}
		now = ptrTo(false)
		if err := s.root.WriteFile(p, []byte(contents), unitFileMode, 0, 0); err != nil {
			return err
		}
		s.changed = true
		if u.Enabled == nil && enabled {
			// Enabled as it was, with the new [Install] section.
			s.enable = append(s.enable, u.Name)
			return nil
		}
	case contents == "" && u.Mask != nil && s.isMask(p):
		if err := s.root.Delete(p); err != nil {
			return fmt.Errorf("unmasking: %w", err)
		}
		s.changed = true
	}

	if u.Enabled == nil {
		return nil
	}
	want := *u.Enabled
	if now == nil && !s.force {
		enabled, err := s.isEnabled(ctx, u.Name)
		if err != nil {
			return fmt.Errorf("checking whether it is enabled: %w", err)
		}
		now = &enabled
	}
	if now != nil && *now == want {
		return nil
	}
	if want {
		s.enable = append(s.enable, u.Name)
	} else {
		s.disable = append(s.disable, u.Name)
	}
	return nil
}

func ptrTo[T any](v T) *T { return &v }

// remove undoes a unit old had and new does not: it is preset (back to its vendor enablement), then its
// files and drop-ins are removed, originals put back (a masked unit is unmasked before the preset). Files the old config no longer owns (see removeStale)
// are left alone, and a unit none of whose files is left to remove is not preset again, so that removing
// twice asks systemd nothing; a unit old only enabled or disabled, without files, is preset every time.
func (s *unitSession) remove(ctx context.Context, u ign3types.Unit) error {
	files := []staleUnitFile{{plannedFile: plannedFile{path: UnitPath(u.Name), data: []byte(deref(u.Contents))}, mask: u.Mask != nil && *u.Mask}}
	for _, d := range u.Dropins {
		files = append(files, staleUnitFile{plannedFile: plannedFile{path: DropinPath(u.Name, d.Name), data: []byte(deref(d.Contents))}})
	}
	var ours []string
	for _, f := range files {
		owned, err := s.ownsStale(f.plannedFile, f.mask)
		if err != nil {
			return err
		}
		if owned {
			ours = append(ours, f.path)
		}
	}
	onlyEnablement := u.Enabled != nil && deref(u.Contents) == "" && len(u.Dropins) == 0 && u.Mask == nil
	if len(ours) == 0 && !onlyEnablement {
		return nil
	}
	removeFiles := func() error {
		for _, p := range ours {
			if err := s.root.RemoveFile(p); err != nil {
				return err
			}
			s.changed = true
		}
		return nil
	}
	if u.Mask != nil && *u.Mask {
		// systemctl refuses to preset a masked unit: unmask first.
		if err := removeFiles(); err != nil {
			return err
		}
		ours = nil
	}
	if err := s.sd.Preset(ctx, u.Name); err != nil {
		return fmt.Errorf("presetting: %w", err)
	}
	if err := removeFiles(); err != nil {
		return err
	}
	s.root.removeEmptyDir(path.Join(SystemdUnitDir, u.Name+".d"))
	return nil
}

// staleUnitFile is a unit file or drop-in the old config wrote; mask when it was a mask symlink.
type staleUnitFile struct {
	plannedFile
	mask bool
}

// removeFile removes a stale unit file or drop-in the way remove does; it reports whether it removed one.
func (s *unitSession) removeFile(f staleUnitFile) (bool, error) {
	owned, err := s.ownsStale(f.plannedFile, f.mask)
	if err != nil || !owned {
		return false, err
	}
	return true, s.root.RemoveFile(f.path)
}

// ownsStale reports whether a stale unit file is the old config's: a backup is recorded, or it still is what
// the old config wrote there.
func (s *unitSession) ownsStale(f plannedFile, mask bool) (bool, error) {
	ours, err := s.root.HasBackup(f.path)
	if err != nil || ours {
		return ours, err
	}
	if mask {
		return s.isMask(f.path), nil
	}
	return len(f.data) > 0 && s.fileIs(f.path, f.data), nil
}

// fileIs reports whether host path p is a regular file with the given content and the unit file mode.
func (s *unitSession) fileIs(p string, want []byte) bool {
	fi, err := s.root.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != unitFileMode {
		return false
	}
	data, err := s.root.ReadFile(p)
	return err == nil && bytes.Equal(data, want)
}

// isMask reports whether host path p is a symlink to /dev/null.
func (s *unitSession) isMask(p string) bool {
	target, err := s.root.Readlink(p)
	return err == nil && target == maskTarget
}

// finish reloads systemd if any unit file changed, then enables and disables the units write collected.
func (s *unitSession) finish(ctx context.Context) error {
	if s.changed {
		if err := s.sd.DaemonReload(ctx); err != nil {
			return fmt.Errorf("reloading systemd units: %w", err)
		}
	}
	if len(s.enable) > 0 {
		if err := s.sd.Enable(ctx, s.enable...); err != nil {
			return fmt.Errorf("enabling units %v: %w", s.enable, err)
		}
	}
	if len(s.disable) > 0 {
		if err := s.sd.Disable(ctx, s.disable...); err != nil {
			return fmt.Errorf("disabling units %v: %w", s.disable, err)
		}
	}
	return nil
}

// isEnabled asks systemd whether unit is enabled. A unit with no file yet (a config adds it) is not
// enabled: systemctl is-enabled fails for it rather than answering.
func (s *unitSession) isEnabled(ctx context.Context, unit string) (bool, error) {
	enabled, err := s.sd.IsEnabled(ctx, unit)
	if err == nil {
		return enabled, nil
	}
	for _, dir := range []string{"/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system"} {
		if _, statErr := s.root.Lstat(path.Join(dir, unit)); statErr == nil || !errors.Is(statErr, fs.ErrNotExist) {
			return false, err
		}
	}
	return false, nil
}
