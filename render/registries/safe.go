package registries

import (
	"fmt"

	"github.com/BurntSushi/toml"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
)

// IsSafeChange reports whether changing a node's registries.conf from oldConf to newConf can be applied without
// draining the node, the way the MCO daemon decides it: only additions that cannot change what running
// workloads pull by tag are safe. It is unsafe when
//   - unqualified-search-registries lost an entry or an existing entry moved;
//   - a registry (keyed by prefix, else location) was removed;
//   - a registry in both changed its prefix, location, blocked or insecure setting, lost a mirror, changed an
//     existing mirror's pull-from-mirror to anything but "digest-only", or gained a mirror without
//     pull-from-mirror = "digest-only" (unless the registry has mirror-by-digest-only);
//   - a registry was added whose mirrors are not all "digest-only" (or, without mirrors, that does not have
//     mirror-by-digest-only).
//
// Anything else is safe. reason explains the first unsafe change found and is empty when the change is safe.
func IsSafeChange(oldConf, newConf []byte) (safe bool, reason string, err error) {
	// Keys outside the v2 model are ignored here (unlike in Generate's base), as the MCO daemon does.
	var oldRegs, newRegs sysregistriesv2.V2RegistriesConf
	if _, err := toml.Decode(string(oldConf), &oldRegs); err != nil {
		return false, "", fmt.Errorf("parsing old registries.conf: %w", err)
	}
	if _, err := toml.Decode(string(newConf), &newRegs); err != nil {
		return false, "", fmt.Errorf("parsing new registries.conf: %w", err)
	}
	if reason := unsafeSearchChange(oldRegs.UnqualifiedSearchRegistries, newRegs.UnqualifiedSearchRegistries); reason != "" {
		return false, reason, nil
	}

	oldByScope := registriesByScope(oldRegs.Registries)
	newByScope := registriesByScope(newRegs.Registries)
	for i := range oldRegs.Registries {
		scope := registryScope(&oldRegs.Registries[i])
		if _, ok := newByScope[scope]; !ok {
			return false, fmt.Sprintf("registry %q removed", scope), nil
		}
	}
	for i := range newRegs.Registries {
		scope := registryScope(&newRegs.Registries[i])
		newReg := newByScope[scope] // the last entry for scope, as for the old side
		oldReg, existed := oldByScope[scope]
		var reason string
		if existed {
			reason = unsafeRegistryChange(scope, oldReg, newReg)
		} else if !allMirrorsDigestOnly(newReg) {
			reason = fmt.Sprintf("registry %q added with mirrors that are not all pull-from-mirror = %q",
				scope, sysregistriesv2.MirrorByDigestOnly)
			if len(newReg.Mirrors) == 0 {
				reason = fmt.Sprintf("registry %q added without mirror-by-digest-only", scope)
			}
		}
		if reason != "" {
			return false, reason, nil
		}
	}
	return true, "", nil
}

// unsafeSearchChange explains why moving from the old to the new unqualified-search-registries is unsafe, or
// returns "".
func unsafeSearchChange(oldRegs, newRegs []string) string {
	if len(newRegs) < len(oldRegs) {
		return fmt.Sprintf("unqualified-search-registries shrank from %d to %d entries", len(oldRegs), len(newRegs))
	}
	for i, reg := range oldRegs {
		if newRegs[i] != reg {
			return fmt.Sprintf("unqualified-search-registries entry %d changed from %q to %q", i, reg, newRegs[i])
		}
	}
	return ""
}

// unsafeRegistryChange explains why changing the registry keyed by scope from oldReg to newReg is unsafe, or
// returns "".
func unsafeRegistryChange(scope string, oldReg, newReg sysregistriesv2.Registry) string {
	switch {
	case oldReg.Prefix != newReg.Prefix:
		return fmt.Sprintf("prefix of registry %q changed from %q to %q", scope, oldReg.Prefix, newReg.Prefix)
	case oldReg.Location != newReg.Location:
		return fmt.Sprintf("location of registry %q changed from %q to %q", scope, oldReg.Location, newReg.Location)
	case oldReg.Blocked != newReg.Blocked:
		return fmt.Sprintf("blocked of registry %q changed from %t to %t", scope, oldReg.Blocked, newReg.Blocked)
	case oldReg.Insecure != newReg.Insecure:
		return fmt.Sprintf("insecure of registry %q changed from %t to %t", scope, oldReg.Insecure, newReg.Insecure)
	}
	for _, m := range oldReg.Mirrors {
		if _, ok := findMirror(newReg.Mirrors, m.Location); !ok {
			return fmt.Sprintf("mirror %q removed from registry %q", m.Location, scope)
		}
	}
	for _, m := range newReg.Mirrors {
		old, existed := findMirror(oldReg.Mirrors, m.Location)
		switch {
		case existed && m.PullFromMirror != old.PullFromMirror && m.PullFromMirror != sysregistriesv2.MirrorByDigestOnly:
			return fmt.Sprintf("pull-from-mirror of mirror %q in registry %q changed from %q to %q",
				m.Location, scope, old.PullFromMirror, m.PullFromMirror)
		case !existed && m.PullFromMirror != sysregistriesv2.MirrorByDigestOnly && !newReg.MirrorByDigestOnly:
			return fmt.Sprintf("mirror %q added to registry %q without pull-from-mirror = %q",
				m.Location, scope, sysregistriesv2.MirrorByDigestOnly)
		}
	}
	return ""
}

// registriesByScope indexes registries by scope; of several entries for one scope the last wins.
func registriesByScope(regs []sysregistriesv2.Registry) map[string]sysregistriesv2.Registry {
	out := make(map[string]sysregistriesv2.Registry, len(regs))
	for i := range regs {
		out[registryScope(&regs[i])] = regs[i]
	}
	return out
}

// findMirror returns the first of mirrors at location.
func findMirror(mirrors []sysregistriesv2.Endpoint, location string) (sysregistriesv2.Endpoint, bool) {
	for _, m := range mirrors {
		if m.Location == location {
			return m, true
		}
	}
	return sysregistriesv2.Endpoint{}, false
}

// allMirrorsDigestOnly reports whether every mirror of reg has pull-from-mirror = "digest-only"; a registry
// without mirrors qualifies only with mirror-by-digest-only.
func allMirrorsDigestOnly(reg sysregistriesv2.Registry) bool {
	if len(reg.Mirrors) == 0 {
		return reg.MirrorByDigestOnly
	}
	for _, m := range reg.Mirrors {
		if m.PullFromMirror != sysregistriesv2.MirrorByDigestOnly {
			return false
		}
	}
	return true
}
