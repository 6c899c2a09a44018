package machineconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/coreos/go-semver/semver"
	ign2 "github.com/coreos/ign-converter/translate/v24tov31"
	ign2v4 "github.com/coreos/ignition/config/v2_4"
	ign2v4types "github.com/coreos/ignition/config/v2_4/types"
	ign32translate "github.com/coreos/ignition/v2/config/v3_2/translate"
	ign33translate "github.com/coreos/ignition/v2/config/v3_3/translate"
	ign34translate "github.com/coreos/ignition/v2/config/v3_4/translate"
	ign34types "github.com/coreos/ignition/v2/config/v3_4/types"
	ign3 "github.com/coreos/ignition/v2/config/v3_5"
	ign35translate "github.com/coreos/ignition/v2/config/v3_5/translate"
	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	ignvalidate "github.com/coreos/ignition/v2/config/validate"
	vvalidate "github.com/coreos/vcontext/validate"
)

// IgnitionVersion is the Ignition spec every config is converted to, and the version of merged configs.
const IgnitionVersion = "3.5.0"

// ErrUnsupportedIgnitionVersion is returned for an Ignition version this project cannot convert.
var ErrUnsupportedIgnitionVersion = errors.New("unsupported Ignition version")

// EmptyIgnition returns an empty config of IgnitionVersion.
func EmptyIgnition() ign3types.Config {
	return ign3types.Config{Ignition: ign3types.Ignition{Version: IgnitionVersion}}
}

// ParseIgnition parses raw Ignition JSON of spec 2.x or 3.0–3.5 into a 3.5 config. Empty input is an empty
// config. Errors carry Ignition's own report, which names the offending field.
func ParseIgnition(raw []byte) (ign3types.Config, error) {
	if len(strings.TrimSpace(string(raw))) == 0 {
		return EmptyIgnition(), nil
	}
	var probe struct {
		Ignition struct {
			Version string `json:"version"`
		} `json:"ignition"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return ign3types.Config{}, fmt.Errorf("parsing Ignition JSON: %w", err)
	}
	v, err := semver.NewVersion(probe.Ignition.Version)
	if err != nil {
		return ign3types.Config{}, fmt.Errorf("%w %q: %v", ErrUnsupportedIgnitionVersion, probe.Ignition.Version, err)
	}
	switch v.Major {
	case 2:
		return parseSpec2(raw)
	case 3:
		if cfg, ok := parseValid(raw, *v); ok {
			return cfg, nil
		}
		cfg, rpt, err := ign3.ParseCompatibleVersion(raw)
		if err != nil {
			if msg := strings.TrimSpace(rpt.String()); msg != "" {
				return ign3types.Config{}, fmt.Errorf("parsing Ignition %s: %w: %s", v, err, msg)
			}
			return ign3types.Config{}, fmt.Errorf("parsing Ignition %s: %w", v, err)
		}
		return cfg, nil
	default:
		return ign3types.Config{}, fmt.Errorf("%w %s (want 2.x or 3.0–3.5)", ErrUnsupportedIgnitionVersion, v)
	}
}

// parseSpec2 converts spec 2.x (through 2.4) to 3.1 with ign-converter, then up to 3.5.
func parseSpec2(raw []byte) (ign3types.Config, error) {
	cfg, rpt, err := ign2v4.Parse(raw)
	if err != nil {
		if msg := strings.TrimSpace(rpt.String()); msg != "" {
			return ign3types.Config{}, fmt.Errorf("parsing Ignition spec 2: %w: %s", err, msg)
		}
		return ign3types.Config{}, fmt.Errorf("parsing Ignition spec 2: %w", err)
	}
	if err := removeSpec2Duplicates(&cfg); err != nil {
		return ign3types.Config{}, fmt.Errorf("converting Ignition spec 2 to 3: %w", err)
	}
	// Spec 2 names filesystems; the only one a MachineConfig may use is the root filesystem.
	fsMap := map[string]string{"root": "/"}
	if err := ign2.Check2_4(cfg, fsMap); err != nil {
		return ign3types.Config{}, fmt.Errorf("converting Ignition spec 2 to 3: %w", err)
	}
	v31, err := ign2.Translate(cfg, fsMap)
	if err != nil {
		return ign3types.Config{}, fmt.Errorf("converting Ignition spec 2 to 3: %w", err)
	}
	return ign35translate.Translate(ign34translate.Translate(ign33translate.Translate(ign32translate.Translate(v31)))), nil
}

// removeSpec2Duplicates does to a spec 2 config what the reference does before converting it (its
// helpers.go removeIgnDuplicateFilesUnitsUsers), since spec 3 refuses repeats that spec 2 allowed and old
// clusters carry such configs; the converted config, and so the rendered config and its name, come out the
// same as there:
//
//   - files and units are walked from the last to the first, keeping the first seen of each path or name
//     (the latest revision) — so the list comes out reversed; a repeated unit's drop-ins are added to the
//     kept unit unless it has one of the same name;
//   - users: only core is supported; every core entry's SSH keys are joined into one core user (the last
//     entry's keys first, then the earlier entries' from the last to the first), keeping the first of each
//     repeated key in order ("duplicate entry" otherwise, Bug 1934176).
func removeSpec2Duplicates(cfg *ign2v4types.Config) error {
	files := cfg.Storage.Files
	seenPaths := make(map[string]struct{}, len(files))
	var outFiles []ign2v4types.File
	for i := len(files) - 1; i >= 0; i-- {
		if _, dup := seenPaths[files[i].Path]; dup {
			continue
		}
		seenPaths[files[i].Path] = struct{}{}
		outFiles = append(outFiles, files[i])
	}

	units := cfg.Systemd.Units
	kept := make(map[string]int, len(units))
	var outUnits []ign2v4types.Unit
	for i := len(units) - 1; i >= 0; i-- {
		j, dup := kept[units[i].Name]
		if !dup {
			kept[units[i].Name] = len(outUnits)
			outUnits = append(outUnits, units[i])
			continue
		}
		for _, d := range units[i].Dropins {
			if !hasDropin(outUnits[j].Dropins, d.Name) {
				outUnits[j].Dropins = append(outUnits[j].Dropins, d)
			}
		}
	}

	if users := cfg.Passwd.Users; len(users) > 0 {
		out := users[len(users)-1]
		keys := append([]ign2v4types.SSHAuthorizedKey(nil), out.SSHAuthorizedKeys...)
		for i := len(users) - 1; i >= 0; i-- {
			if users[i].Name != "core" {
				return fmt.Errorf("unexpected user with name: %v. Only core user is supported", users[i].Name)
			}
			if i < len(users)-1 {
				keys = append(keys, users[i].SSHAuthorizedKeys...)
			}
		}
		seen := make(map[ign2v4types.SSHAuthorizedKey]struct{}, len(keys))
		out.SSHAuthorizedKeys = nil
		for _, k := range keys {
			if _, dup := seen[k]; !dup {
				seen[k] = struct{}{}
				out.SSHAuthorizedKeys = append(out.SSHAuthorizedKeys, k)
			}
		}
		cfg.Passwd.Users = []ign2v4types.PasswdUser{out}
	}
	cfg.Storage.Files = outFiles
	cfg.Systemd.Units = outUnits
	return nil
}

func hasDropin(dropins []ign2v4types.SystemdDropin, name string) bool {
	for _, d := range dropins {
		if d.Name == name {
			return true
		}
	}
	return false
}

// parseValid is Ignition's Parse of a 3.4.0 or 3.5.0 config (then translated to 3.5) for a config that is
// valid, without what Ignition does only to report: it decodes the JSON into the version's types once and
// runs the same validators (fields, duplicates) but not the unused-key check, which only warns, nor the
// decode of the JSON into a position tree that places the report's entries. ok is false for other
// versions and for a config that does not decode or validate; the caller then runs Ignition's own parse,
// so that a bad config gets Ignition's report. The result is the same as Ignition's (TestParseValidSameAsIgnition).
func parseValid(raw []byte, v semver.Version) (cfg ign3types.Config, ok bool) {
	switch v {
	case ign3types.MaxVersion:
		if err := json.Unmarshal(raw, &cfg); err != nil || !validates(cfg) {
			return ign3types.Config{}, false
		}
		return cfg, true
	case ign34types.MaxVersion:
		var c34 ign34types.Config
		if err := json.Unmarshal(raw, &c34); err != nil || !validates(c34) {
			return ign3types.Config{}, false
		}
		return ign35translate.Translate(c34), true
	default:
		return ign3types.Config{}, false
	}
}

// validates reports whether Ignition's validation of cfg (a spec's Config) finds nothing fatal: the field
// validators and the duplicate check of validate.ValidateWithContext.
func validates(cfg any) bool {
	r := vvalidate.Validate(cfg, "json")
	r.Merge(vvalidate.ValidateCustom(cfg, "json", ignvalidate.ValidateDups))
	return !r.IsFatal()
}
