package simhost

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/google/renameio/v2"

	"github.com/imagemode/imagemode/daemon"
)

// Host directories of unit files, in systemd's order of precedence, and of presets.
const (
	etcUnitDir    = "/etc/systemd/system"
	runUnitDir    = "/run/systemd/system"
	vendorUnitDir = "/usr/lib/systemd/system"
)

var (
	unitDirs   = []string{etcUnitDir, runUnitDir, vendorUnitDir}
	presetDirs = []string{"/etc/systemd/system-preset", "/run/systemd/system-preset", "/usr/lib/systemd/system-preset"}
)

// systemd is the host's systemctl, working on the unit files under the root as systemctl does.
type systemd struct{ h *Host }

// run logs the call and, under the host's lock, runs fn on the root.
func (sd *systemd) run(call string, fn func(r daemon.Root) error) error {
	return sd.h.update(func(s *state) error {
		s.Calls = append(s.Calls, call)
		if fn == nil {
			return nil
		}
		return fn(sd.h.Root())
	})
}

// DaemonReload records `systemctl daemon-reload`.
func (sd *systemd) DaemonReload(ctx context.Context) error {
	return sd.run("systemctl daemon-reload", nil)
}

// Reload records `systemctl reload <unit>`.
func (sd *systemd) Reload(ctx context.Context, unit string) error {
	return sd.run("systemctl reload "+unit, nil)
}

// Restart records `systemctl restart <unit>`.
func (sd *systemd) Restart(ctx context.Context, unit string) error {
	return sd.run("systemctl restart "+unit, nil)
}

// Enable links each unit into the targets its [Install] section names (WantedBy= into <target>.wants,
// RequiredBy= into <target>.requires, under /etc/systemd/system). A unit without [Install] is left as is;
// an unknown or masked unit is an error, as with systemctl.
func (sd *systemd) Enable(ctx context.Context, units ...string) error {
	return sd.run(strings.Join(append([]string{"systemctl", "enable"}, units...), " "), func(r daemon.Root) error {
		for _, u := range units {
			if err := enableUnit(r, u); err != nil {
				return fmt.Errorf("systemctl enable: %w", err)
			}
		}
		return nil
	})
}

// Disable removes the unit's links from every target's .wants and .requires under /etc/systemd/system.
func (sd *systemd) Disable(ctx context.Context, units ...string) error {
	return sd.run(strings.Join(append([]string{"systemctl", "disable"}, units...), " "), func(r daemon.Root) error {
		for _, u := range units {
			if err := disableUnit(r, u); err != nil {
				return fmt.Errorf("systemctl disable: %w", err)
			}
		}
		return nil
	})
}

// Preset enables each unit a preset file enables (`enable <glob>`, first match over the preset files in
// name order) and disables the others.
func (sd *systemd) Preset(ctx context.Context, units ...string) error {
	return sd.run(strings.Join(append([]string{"systemctl", "preset"}, units...), " "), func(r daemon.Root) error {
		rules, err := readPresets(r)
		if err != nil {
			return fmt.Errorf("systemctl preset: %w", err)
		}
		for _, u := range units {
			name, err := unitName(u)
			if err != nil {
				return fmt.Errorf("systemctl preset: %w", err)
			}
			if presetEnables(rules, name) {
				err = enableUnit(r, name)
			} else {
				err = disableUnit(r, name)
			}
			if err != nil {
				return fmt.Errorf("systemctl preset: %w", err)
			}
		}
		return nil
	})
}

// IsEnabled reports whether a link to the unit exists in a .wants or .requires directory under
// /etc/systemd/system or /run/systemd/system. A masked unit is not enabled; an unknown one is an error.
func (sd *systemd) IsEnabled(ctx context.Context, unit string) (bool, error) {
	name, err := unitName(unit)
	if err != nil {
		return false, err
	}
	unlock, err := lockDir(sd.h.dir)
	if err != nil {
		return false, err
	}
	defer unlock()
	r := sd.h.Root()
	if _, masked, err := findUnit(r, name); err != nil || masked {
		return false, err
	}
	links, err := unitLinks(r, name, etcUnitDir, runUnitDir)
	return len(links) > 0, err
}

// Reboot records a pending reboot with its reason, then calls Options.OnReboot.
func (sd *systemd) Reboot(ctx context.Context, reason string) error {
	err := sd.h.update(func(s *state) error {
		s.Calls = append(s.Calls, "reboot: "+reason)
		s.RebootPending, s.RebootReason = true, reason
		return nil
	})
	if err != nil {
		return err
	}
	if sd.h.opts.OnReboot != nil {
		sd.h.opts.OnReboot(reason)
	}
	return nil
}

// unitName completes a unit name as systemctl does ("crio" is "crio.service") and refuses paths.
func unitName(u string) (string, error) {
	if u == "" || strings.ContainsAny(u, "/\x00") || u == "." || u == ".." {
		return "", fmt.Errorf("unit name %q is not valid", u)
	}
	if !strings.Contains(u, ".") {
		u += ".service"
	}
	return u, nil
}

// templateOf returns the template of an instance name ("getty@tty1.service" → "getty@.service"), or "".
func templateOf(name string) string {
	prefix, rest, ok := strings.Cut(name, "@")
	if !ok {
		return ""
	}
	_, suffix, ok := strings.Cut(rest, ".")
	if !ok || strings.HasPrefix(rest, ".") {
		return ""
	}
	return prefix + "@." + suffix
}

// findUnit returns the host path of the unit's file and whether it is masked (linked to /dev/null in
// /etc or /run). An instance without its own file uses its template's.
func findUnit(r daemon.Root, name string) (string, bool, error) {
	candidates := []string{name}
	if t := templateOf(name); t != "" {
		candidates = append(candidates, t)
	}
	for _, c := range candidates {
		for _, dir := range unitDirs {
			p := path.Join(dir, c)
			fi, err := os.Lstat(r.HostPath(p))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return "", false, err
			}
			if fi.Mode()&fs.ModeSymlink != 0 && dir != vendorUnitDir {
				if target, err := os.Readlink(r.HostPath(p)); err == nil && target == "/dev/null" {
					return p, true, nil
				}
			}
			return p, false, nil
		}
	}
	return "", false, missingUnitError(name)
}

// missingUnitError is systemctl's error for a unit without a file; it matches fs.ErrNotExist.
type missingUnitError string

func (e missingUnitError) Error() string { return "Unit file " + string(e) + " does not exist." }

func (e missingUnitError) Is(target error) bool { return target == fs.ErrNotExist }

// readInRoot reads host path p, following symlinks as if the root were "/".
func readInRoot(r daemon.Root, p string) ([]byte, error) {
	for hops := 0; hops < 40; hops++ {
		real, err := r.Resolve(p)
		if err != nil {
			return nil, err
		}
		fi, err := os.Lstat(r.HostPath(real))
		if err != nil {
			return nil, err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return os.ReadFile(r.HostPath(real))
		}
		target, err := os.Readlink(r.HostPath(real))
		if err != nil {
			return nil, err
		}
		if path.IsAbs(target) {
			p = target
		} else {
			p = path.Join(path.Dir(real), target)
		}
	}
	return nil, fmt.Errorf("reading %s: %w", p, syscall.ELOOP)
}

// installSection returns the WantedBy= and RequiredBy= targets of a unit file's [Install] section.
func installSection(content []byte) (wantedBy, requiredBy []string) {
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(content))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			continue
		}
		if section != "Install" {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(key) {
		case "WantedBy":
			wantedBy = append(wantedBy, strings.Fields(val)...)
		case "RequiredBy":
			requiredBy = append(requiredBy, strings.Fields(val)...)
		}
	}
	return wantedBy, requiredBy
}

func enableUnit(r daemon.Root, unit string) error {
	name, err := unitName(unit)
	if err != nil {
		return err
	}
	file, masked, err := findUnit(r, name)
	if err != nil {
		return err
	}
	if masked {
		return fmt.Errorf("Unit file %s is masked.", name) //nolint:staticcheck // systemctl's words
	}
	content, err := readInRoot(r, file)
	if err != nil {
		return fmt.Errorf("reading unit %s: %w", name, err)
	}
	wantedBy, requiredBy := installSection(content)
	for _, l := range []struct {
		targets []string
		suffix  string
	}{{wantedBy, ".wants"}, {requiredBy, ".requires"}} {
		for _, t := range l.targets {
			dir := r.HostPath(path.Join(etcUnitDir, t+l.suffix))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("enabling %s: %w", name, err)
			}
			if err := renameio.Symlink(file, filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("enabling %s: %w", name, err)
			}
		}
	}
	return nil
}

func disableUnit(r daemon.Root, unit string) error {
	name, err := unitName(unit)
	if err != nil {
		return err
	}
	if _, _, err := findUnit(r, name); err != nil {
		return err
	}
	links, err := unitLinks(r, name, etcUnitDir)
	if err != nil {
		return err
	}
	for _, l := range links {
		if err := os.Remove(l); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("disabling %s: %w", name, err)
		}
	}
	return nil
}

// unitLinks returns the local paths of the unit's links in the .wants and .requires directories of dirs.
func unitLinks(r daemon.Root, name string, dirs ...string) ([]string, error) {
	var out []string
	for _, dir := range dirs {
		for _, suffix := range []string{".wants", ".requires"} {
			matches, err := filepath.Glob(filepath.Join(r.HostPath(dir), "*"+suffix, name))
			if err != nil {
				return nil, err
			}
			for _, m := range matches {
				if fi, err := os.Lstat(m); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
					out = append(out, m)
				}
			}
		}
	}
	return out, nil
}

// presetRule is one `enable|disable <glob>` line of a preset file.
type presetRule struct {
	enable  bool
	pattern string
}

// readPresets reads the *.preset files, ordered by file name (a name in /etc hides the same in /usr/lib).
func readPresets(r daemon.Root) ([]presetRule, error) {
	files := map[string]string{}
	for i := len(presetDirs) - 1; i >= 0; i-- {
		matches, err := filepath.Glob(filepath.Join(r.HostPath(presetDirs[i]), "*.preset"))
		if err != nil {
			return nil, err
		}
		for _, m := range matches {
			files[filepath.Base(m)] = m
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var rules []presetRule
	for _, n := range names {
		content, err := os.ReadFile(files[n])
		if err != nil {
			return nil, fmt.Errorf("reading preset %s: %w", n, err)
		}
		rules = append(rules, parsePresets(content)...)
	}
	return rules, nil
}

// parsePresets parses the rules of one preset file.
func parsePresets(content []byte) []presetRule {
	var rules []presetRule
	for _, line := range strings.Split(string(content), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !slices.Contains([]string{"enable", "disable"}, f[0]) {
			continue
		}
		rules = append(rules, presetRule{enable: f[0] == "enable", pattern: f[1]})
	}
	return rules
}

// presetEnables reports whether the first rule matching unit enables it; no rule means disabled.
func presetEnables(rules []presetRule, unit string) bool {
	for _, r := range rules {
		if ok, _ := path.Match(r.pattern, unit); ok {
			return r.enable
		}
	}
	return false
}
