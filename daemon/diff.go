package daemon

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"

	"github.com/imagemode/imagemode/render/machineconfig"
)

// defaultFileMode is the mode Ignition gives a file whose mode is unset.
const defaultFileMode = 0o644

// Canonical kernel types; an empty kernelType is KernelTypeDefault.
const (
	KernelTypeDefault  = "default"
	KernelTypeRealtime = "realtime"
	KernelType64kPages = "64k-pages"
)

// PathChanges lists what changed between two configs, by key (file path or unit name), each list sorted.
type PathChanges struct {
	Added   []string
	Changed []string
	Removed []string
}

// All returns every added, changed and removed key, sorted.
func (c PathChanges) All() []string {
	out := make([]string, 0, len(c.Added)+len(c.Changed)+len(c.Removed))
	out = append(append(append(out, c.Added...), c.Changed...), c.Removed...)
	sort.Strings(out)
	return out
}

// Empty reports whether nothing changed.
func (c PathChanges) Empty() bool {
	return len(c.Added)+len(c.Changed)+len(c.Removed) == 0
}

// ConfigDiff is what changed between the config a node runs and the one it should run. Every list is sorted,
// so that the same two configs always give the same diff.
type ConfigDiff struct {
	// Files are Ignition storage files by path, compared on decoded contents, mode and owner.
	Files PathChanges
	// Units are systemd units by name, compared on contents, enabled, mask and drop-ins.
	Units PathChanges
	// SSHKeys is set when the core user's ssh keys changed.
	SSHKeys bool
	// PasswordHash is set when the core user's password hash changed.
	PasswordHash bool
	// KernelArguments is set when spec.kernelArguments changed.
	KernelArguments bool
	// KernelType is set when the canonical kernelType changed.
	KernelType bool
	// Extensions is set when the set of extensions changed.
	Extensions bool
	// FIPS is set when spec.fips changed.
	FIPS bool
	// OSImageURL is set when spec.osImageURL changed.
	OSImageURL bool
}

// OSChanged reports whether the change needs a new deployment or boot: OS image, kernel arguments, kernel
// type, extensions or FIPS.
func (d *ConfigDiff) OSChanged() bool {
	return d.OSImageURL || d.KernelArguments || d.KernelType || d.Extensions || d.FIPS
}

// Passwd reports whether the core user's ssh keys or password hash changed.
func (d *ConfigDiff) Passwd() bool { return d.SSHKeys || d.PasswordHash }

// Empty reports whether the two configs apply the same thing to a node.
func (d *ConfigDiff) Empty() bool {
	return !d.OSChanged() && !d.Passwd() && d.Files.Empty() && d.Units.Empty()
}

// Diff computes what changes on a node moving from old to new. A nil old is an empty config (everything in
// new is added). Files whose contents cannot be decoded are an error naming the config and path.
func Diff(old, new *mcfgv1.MachineConfig) (*ConfigDiff, error) {
	if new == nil {
		return nil, fmt.Errorf("diffing configs: %w", ErrNoConfig)
	}
	oldSpec := mcfgv1.MachineConfigSpec{}
	if old != nil {
		oldSpec = old.Spec
	}
	oldIgn, err := machineconfig.ParseIgnition(oldSpec.Config.Raw)
	if err != nil {
		return nil, fmt.Errorf("parsing current config %q: %w", nameOf(old), err)
	}
	newIgn, err := machineconfig.ParseIgnition(new.Spec.Config.Raw)
	if err != nil {
		return nil, fmt.Errorf("parsing new config %q: %w", new.Name, err)
	}
	return diffParsed(old, new, oldIgn, newIgn)
}

// diffParsed is Diff of old and new whose Ignition configs were parsed already.
func diffParsed(old, new *mcfgv1.MachineConfig, oldIgn, newIgn ign3types.Config) (*ConfigDiff, error) {
	oldSpec := mcfgv1.MachineConfigSpec{}
	if old != nil {
		oldSpec = old.Spec
	}
	d := &ConfigDiff{
		KernelArguments: !slices.Equal(oldSpec.KernelArguments, new.Spec.KernelArguments),
		KernelType:      CanonicalKernelType(oldSpec.KernelType) != CanonicalKernelType(new.Spec.KernelType),
		Extensions:      !slices.Equal(sortedSet(oldSpec.Extensions), sortedSet(new.Spec.Extensions)),
		FIPS:            oldSpec.FIPS != new.Spec.FIPS,
		OSImageURL:      oldSpec.OSImageURL != new.Spec.OSImageURL,
	}
	oldKeys, oldHash := coreUser(oldIgn.Passwd)
	newKeys, newHash := coreUser(newIgn.Passwd)
	d.SSHKeys = !slices.Equal(oldKeys, newKeys)
	d.PasswordHash = oldHash != newHash

	oldFiles, err := fileStates(oldIgn.Storage.Files)
	if err != nil {
		return nil, fmt.Errorf("decoding files of current config %q: %w", nameOf(old), err)
	}
	newFiles, err := fileStates(newIgn.Storage.Files)
	if err != nil {
		return nil, fmt.Errorf("decoding files of new config %q: %w", new.Name, err)
	}
	d.Files = compareKeyed(oldFiles, newFiles, func(a, b fileState) bool { return a.equal(b) })
	d.Units = compareKeyed(unitStates(oldIgn.Systemd.Units), unitStates(newIgn.Systemd.Units), func(a, b unitState) bool { return reflect.DeepEqual(a, b) })
	return d, nil
}

func nameOf(mc *mcfgv1.MachineConfig) string {
	if mc == nil {
		return ""
	}
	return mc.Name
}

// CanonicalKernelType maps an empty kernelType to KernelTypeDefault.
func CanonicalKernelType(t string) string {
	if t == "" {
		return KernelTypeDefault
	}
	return t
}

// sortedSet returns the distinct values of in, sorted.
func sortedSet(in []string) []string {
	out := slices.Clone(in)
	sort.Strings(out)
	return slices.Compact(out)
}

// coreUser returns the core user's ssh keys (trimmed, empty ones dropped, in order) and password hash.
func coreUser(pw ign3types.Passwd) ([]string, string) {
	var keys []string
	hash := ""
	for _, u := range pw.Users {
		if u.Name != machineconfig.CoreUser {
			continue
		}
		for _, k := range u.SSHAuthorizedKeys {
			if k := strings.TrimSpace(string(k)); k != "" {
				keys = append(keys, k)
			}
		}
		if u.PasswordHash != nil {
			hash = *u.PasswordHash
		}
	}
	return keys, hash
}

// compareKeyed compares two keyed sets, returning sorted keys.
func compareKeyed[T any](old, new map[string]T, equal func(a, b T) bool) PathChanges {
	var c PathChanges
	for k, n := range new {
		o, ok := old[k]
		switch {
		case !ok:
			c.Added = append(c.Added, k)
		case !equal(o, n):
			c.Changed = append(c.Changed, k)
		}
	}
	for k := range old {
		if _, ok := new[k]; !ok {
			c.Removed = append(c.Removed, k)
		}
	}
	sort.Strings(c.Added)
	sort.Strings(c.Changed)
	sort.Strings(c.Removed)
	return c
}

// fileState is what a node gets for one Ignition file.
type fileState struct {
	data  []byte
	mode  int
	owner string
}

func (a fileState) equal(b fileState) bool {
	return bytes.Equal(a.data, b.data) && a.mode == b.mode && a.owner == b.owner
}

func fileStates(files []ign3types.File) (map[string]fileState, error) {
	out := make(map[string]fileState, len(files))
	for _, f := range files {
		data, err := DecodeFileContents(f)
		if err != nil {
			return nil, fmt.Errorf("file %s: %w", f.Path, err)
		}
		mode := defaultFileMode
		if f.Mode != nil {
			mode = *f.Mode
		}
		out[f.Path] = fileState{data: data, mode: mode, owner: ownerKey(f.User) + ":" + ownerKey(ign3types.NodeUser(f.Group))}
	}
	return out, nil
}

// ownerKey normalizes an Ignition user or group: an ID wins over a name; none (or "root") is ID 0.
func ownerKey(u ign3types.NodeUser) string {
	switch {
	case u.ID != nil:
		return fmt.Sprint(*u.ID)
	case u.Name != nil && *u.Name != "" && *u.Name != "root":
		return "name=" + *u.Name
	default:
		return "0"
	}
}

// DecodeFileContents returns the bytes an Ignition file gets: its data URL decoded and gunzipped when its
// compression is gzip. No source is an empty file. Remote sources are an error (ErrRemoteSource): a node
// applies only inline contents.
func DecodeFileContents(f ign3types.File) ([]byte, error) {
	return machineconfig.DecodeContents(f.Contents)
}

// ConfigFile returns the decoded contents of the Ignition file at path in mc, and whether mc has that
// file. A nil mc has no files. Actions needs the old and new registries.conf this way.
func ConfigFile(mc *mcfgv1.MachineConfig, path string) ([]byte, bool, error) {
	if mc == nil {
		return nil, false, nil
	}
	cfg, err := machineconfig.ParseIgnition(mc.Spec.Config.Raw)
	if err != nil {
		return nil, false, fmt.Errorf("parsing config %q: %w", mc.Name, err)
	}
	for _, f := range cfg.Storage.Files {
		if f.Path != path {
			continue
		}
		data, err := DecodeFileContents(f)
		if err != nil {
			return nil, false, fmt.Errorf("decoding file %s of config %q: %w", path, mc.Name, err)
		}
		return data, true, nil
	}
	return nil, false, nil
}

// unitState is a unit normalized for comparison: unset and empty contents alike, drop-ins by name.
type unitState struct {
	Contents string
	Enabled  *bool
	Mask     bool
	Dropins  map[string]string
}

func unitStates(units []ign3types.Unit) map[string]unitState {
	out := make(map[string]unitState, len(units))
	for _, u := range units {
		s := unitState{Enabled: u.Enabled, Mask: u.Mask != nil && *u.Mask}
		if u.Contents != nil {
			s.Contents = *u.Contents
		}
		if len(u.Dropins) > 0 {
			s.Dropins = make(map[string]string, len(u.Dropins))
			for _, d := range u.Dropins {
				c := ""
				if d.Contents != nil {
					c = *d.Contents
				}
				s.Dropins[d.Name] = c
			}
		}
		out[u.Name] = s
	}
	return out
}
