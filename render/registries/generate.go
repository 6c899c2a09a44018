package registries

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
)

// Generate returns the registries.conf for in: base (TOML; empty means an empty configuration, pass
// DefaultRegistriesConf for the stock one) with the mirror sets, blocked and insecure registries and search
// registries of in applied. Entries already in base are kept and edited in place; new entries are appended:
// first the digest-mirrored sources (ICSPs and IDMSs) and then the tag-mirrored ones (ITMSs), each in source
// order, then the blocked and the insecure scopes without an entry yet. In detail:
//   - per source, the mirrors of all entries are merged (see orderMirrors); digest mirrors are written with
//     pull-from-mirror = "digest-only", tag mirrors with "tag-only"; NeverContactSource blocks the source;
//   - an entry without mirrors of its own nested inside a mirrored source inherits the innermost such source's
//     mirrors, with its path below the source appended to each mirror (and its NeverContactSource block), as
//     registries.conf only uses the most specific entry;
//   - insecure scopes make every nested entry and every nested mirror insecure; blocked scopes block every
//     nested entry.
//
// containerRuntimeSearchRegistries are not written here: as in the reference, they go to their own drop-in
// (SearchRegistriesConf), and unqualified-search-registries stay as base has them.
//
// in is validated first (see Validate); validation errors are returned as the error.
func Generate(base []byte, in Inputs) ([]byte, error) {
	if errs := Validate(in); len(errs) > 0 {
		return nil, fmt.Errorf("validating registry configuration: %w", errs.ToAggregate())
	}
	conf, err := parseRegistriesConf(base)
	if err != nil {
		return nil, fmt.Errorf("parsing base registries.conf: %w", err)
	}
	entries := in.mirrorEntries()
	sources := in.registrySources()
	applyRegistryConfig(&conf, mergeMirrorSets(entries, digestMirrors), mergeMirrorSets(entries, tagMirrors),
		sources.InsecureRegistries, sources.BlockedRegistries)
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(conf); err != nil {
		return nil, fmt.Errorf("encoding registries.conf: %w", err)
	}
	return buf.Bytes(), nil
}

// parseRegistriesConf decodes a registries.conf (v2); keys the v2 model does not know are an error rather than
// being dropped silently.
func parseRegistriesConf(data []byte) (sysregistriesv2.V2RegistriesConf, error) {
	var conf sysregistriesv2.V2RegistriesConf
	md, err := toml.Decode(string(data), &conf)
	if err != nil {
		return conf, err
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, len(undecoded))
		for i, k := range undecoded {
			keys[i] = k.String()
		}
		return conf, fmt.Errorf("unsupported keys %s", strings.Join(keys, ", "))
	}
	return conf, nil
}

// applyRegistryConfig edits conf in place with merged digest and tag mirror sets and the insecure and blocked
// scopes (see Generate for the rules).
func applyRegistryConfig(conf *sysregistriesv2.V2RegistriesConf, digest, tag []mergedSet, insecure, blocked []string) {
	for _, set := range digest {
		addMirrorSet(conf, set, sysregistriesv2.MirrorByDigestOnly)
	}
	for _, set := range tag {
		addMirrorSet(conf, set, sysregistriesv2.MirrorByTagOnly)
	}
	// Create the blocked and insecure entries before inheriting mirrors and propagating flags, so that they
	// take part in both (e.g. *.blocked.insecure.example is both blocked and, inside *.insecure.example,
	// insecure; primary.example/top/blocked inherits the mirrors of primary.example/top).
	for _, scope := range blocked {
		registryIndex(conf, scope)
	}
	for _, scope := range insecure {
		registryIndex(conf, scope)
	}
	inheritMirrors(conf, slices.Concat(digest, tag))
	for _, scope := range insecure {
		for i := range conf.Registries {
			reg := &conf.Registries[i]
			if scopeNested(registryScope(reg), scope) {
				reg.Insecure = true
			}
			for j := range reg.Mirrors {
				if scopeNested(reg.Mirrors[j].Location, scope) {
					reg.Mirrors[j].Insecure = true
				}
			}
		}
	}
	for _, scope := range blocked {
		for i := range conf.Registries {
			if scopeNested(registryScope(&conf.Registries[i]), scope) {
				conf.Registries[i].Blocked = true
			}
		}
	}
}

// addMirrorSet appends set's mirrors, with pull-from-mirror = pullFrom, to the entry of set's source.
func addMirrorSet(conf *sysregistriesv2.V2RegistriesConf, set mergedSet, pullFrom string) {
	reg := &conf.Registries[registryIndex(conf, set.source)]
	if set.neverContactSource {
		reg.Blocked = true
	}
	for _, m := range set.mirrors {
		reg.Mirrors = append(reg.Mirrors, sysregistriesv2.Endpoint{Location: m, PullFromMirror: pullFrom})
	}
}

// registryIndex returns the index of the entry keyed by scope, appending one (prefix for a wildcard scope,
// location otherwise) when there is none.
func registryIndex(conf *sysregistriesv2.V2RegistriesConf, scope string) int {
	if i, ok := findRegistry(conf, scope); ok {
		return i
	}
	reg := sysregistriesv2.Registry{}
	if isWildcardScope(scope) {
		reg.Prefix = scope
	} else {
		reg.Location = scope
	}
	conf.Registries = append(conf.Registries, reg)
	return len(conf.Registries) - 1
}

// findRegistry returns the index of the entry keyed by scope.
func findRegistry(conf *sysregistriesv2.V2RegistriesConf, scope string) (int, bool) {
	for i := range conf.Registries {
		if registryScope(&conf.Registries[i]) == scope {
			return i, true
		}
	}
	return 0, false
}

// inheritMirrors gives every non-wildcard entry without mirrors that lies strictly inside a mirrored source the
// mirrors of the innermost such source, each mirror's location extended by the entry's path below the source
// (e.g. primary.example/top/sub under primary.example/top mirrored to mirror.example/p gets
// mirror.example/p/sub), together with the source's mirror-by-digest-only and NeverContactSource blocking.
func inheritMirrors(conf *sysregistriesv2.V2RegistriesConf, sets []mergedSet) {
	never := map[string]bool{}
	for _, set := range sets {
		never[set.source] = never[set.source] || set.neverContactSource
	}
	for i := range conf.Registries {
		reg := &conf.Registries[i]
		scope := registryScope(reg)
		if len(reg.Mirrors) > 0 || isWildcardScope(scope) {
			continue
		}
		parent := ""
		for source := range never {
			if source != scope && scopeNested(scope, source) && len(source) > len(parent) {
				parent = source
			}
		}
		p, ok := findRegistry(conf, parent)
		if parent == "" || !ok {
			continue
		}
		from := conf.Registries[p]
		suffix := scope[len(parent):]
		for _, m := range from.Mirrors {
			m.Location += suffix
			reg.Mirrors = append(reg.Mirrors, m)
		}
		reg.MirrorByDigestOnly = from.MirrorByDigestOnly
		if never[parent] {
			reg.Blocked = true
		}
	}
}
