package layering

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
)

// unitResult is what a config's systemd section bakes in.
type unitResult struct {
	entries []*entry
	// enable and disable are units the config enables or disables without giving their contents (units of
	// the OS): only systemctl in the image knows their [Install] section. Sorted, without repeats.
	enable, disable []string
}

// unitContent writes units and drop-ins, mask links, and the symlinks `systemctl enable` would create for
// enabled units whose contents the config gives. A masked unit is a link to /dev/null and its contents are
// not written, as the daemon does.
func unitContent(units []ign3types.Unit, field string) (*unitResult, error) {
	r := &unitResult{}
	contents := map[string]string{} // unmasked units with contents, by name
	type pending struct{ name, field string }
	var toEnable []pending
	for i, u := range units {
		uf := fmt.Sprintf("%s[%d]", field, i)
		if !validUnitName(u.Name) {
			return nil, fieldErrorf(uf+".name", "%q is not a valid systemd unit name", u.Name)
		}
		for j, d := range u.Dropins {
			df := fmt.Sprintf("%s.dropins[%d]", uf, j)
			if d.Contents == nil {
				continue
			}
			if d.Name == "" || strings.Contains(d.Name, "/") || d.Name == "." || d.Name == ".." {
				return nil, fieldErrorf(df+".name", "%q is not a valid drop-in file name", d.Name)
			}
			r.entries = append(r.entries, &entry{path: path.Join(UnitDir, u.Name+".d", d.Name), mode: defaultFileMode,
				data: []byte(*d.Contents), field: df + ".contents"})
		}
		unitPath := path.Join(UnitDir, u.Name)
		if u.Mask != nil && *u.Mask {
			r.entries = append(r.entries, &entry{path: unitPath, mode: fs.ModeSymlink | 0o777, target: "/dev/null", field: uf + ".mask"})
			continue
		}
		if u.Contents != nil {
			contents[u.Name] = *u.Contents
			r.entries = append(r.entries, &entry{path: unitPath, mode: defaultFileMode, data: []byte(*u.Contents), field: uf + ".contents"})
		}
		switch {
		case u.Enabled == nil:
		case *u.Enabled:
			toEnable = append(toEnable, pending{u.Name, uf + ".enabled"})
		case u.Contents == nil:
			r.disable = append(r.disable, u.Name)
		}
	}
	// Enabling a unit enables the units its Also= names, so this is a work list.
	done := map[string]bool{}
	for len(toEnable) > 0 {
		p := toEnable[0]
		toEnable = toEnable[1:]
		if done[p.name] {
			continue
		}
		done[p.name] = true
		text, ok := contents[p.name]
		if !ok {
			r.enable = append(r.enable, p.name)
			continue
		}
		install := parseInstall(text)
		links, err := enableLinks(p.name, install, p.field)
		if err != nil {
			return nil, err
		}
		r.entries = append(r.entries, links...)
		for _, also := range install["Also"] {
			if !validUnitName(also) {
				return nil, fieldErrorf(p.field, "unit %s: Also=%s is not a valid systemd unit name", p.name, also)
			}
			toEnable = append(toEnable, pending{also, p.field})
		}
	}
	slices.Sort(r.enable)
	slices.Sort(r.disable)
	r.disable = slices.Compact(r.disable)
	return r, nil
}

// enableLinks returns the symlinks `systemctl enable name` creates from the unit's [Install] section:
// <target>.wants/, .requires/ and .upholds/ links for WantedBy=, RequiredBy= and UpheldBy=, and Alias=
// links, each pointing to the unit file. A template unit (foo@.service) is wanted under the instance its
// DefaultInstance= names, and not at all without one.
func enableLinks(name string, install map[string][]string, field string) ([]*entry, error) {
	unitPath := path.Join(UnitDir, name)
	link := func(p string) *entry {
		return &entry{path: p, mode: fs.ModeSymlink | 0o777, target: unitPath, field: field}
	}
	var out []*entry
	instance := name
	if prefix, suffix, ok := strings.Cut(name, "@."); ok {
		instance = ""
		if def := install["DefaultInstance"]; len(def) > 0 {
			instance = prefix + "@" + def[len(def)-1] + "." + suffix
		}
	}
	if instance != "" {
		for _, dep := range []struct{ key, dir string }{{"WantedBy", ".wants"}, {"RequiredBy", ".requires"}, {"UpheldBy", ".upholds"}} {
			for _, target := range install[dep.key] {
				if !validUnitName(target) {
					return nil, fieldErrorf(field, "unit %s: %s=%s is not a valid systemd unit name", name, dep.key, target)
				}
				out = append(out, link(path.Join(UnitDir, target+dep.dir, instance)))
			}
		}
	}
	for _, alias := range install["Alias"] {
		if !validUnitName(alias) {
			return nil, fieldErrorf(field, "unit %s: Alias=%s is not a valid systemd unit name", name, alias)
		}
		out = append(out, link(path.Join(UnitDir, alias)))
	}
	return out, nil
}

// parseInstall returns the [Install] section of a unit file: each key's words, as systemd reads them
// (comments skipped, backslash-continued lines joined, an empty assignment resetting the list).
func parseInstall(text string) map[string][]string {
	out := map[string][]string{}
	inInstall := false
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		for strings.HasSuffix(line, "\\") && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, "\\") + " " + strings.TrimSpace(lines[i])
		}
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			inInstall = strings.TrimSpace(line) == "[Install]"
		case inInstall:
			key, value, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			key = strings.TrimSpace(key)
			words := strings.Fields(value)
			if len(words) == 0 {
				delete(out, key)
				continue
			}
			out[key] = append(out[key], words...)
		}
	}
	return out
}

// validUnitName reports whether name is a systemd unit name: a name of systemd's characters (ASCII letters,
// digits, ":-_.\@") and a type suffix, at most 255 characters.
func validUnitName(name string) bool {
	dot := strings.LastIndexByte(name, '.')
	if len(name) > 255 || dot <= 0 || dot == len(name)-1 {
		return false
	}
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.ContainsRune(":-_.\\@", c):
		default:
			return false
		}
	}
	return true
}
