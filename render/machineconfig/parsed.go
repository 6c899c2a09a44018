package machineconfig

import (
	"crypto/sha256"
	"fmt"
	"sync"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Parsed is a MachineConfig whose Ignition was parsed (and converted to 3.5) and which was validated, once.
// It is read-only: merges copy what they change.
type Parsed struct {
	Config *mcfgv1.MachineConfig
	// Ignition is the parsed config; empty when ParseErr is set.
	Ignition ign3types.Config
	// ParseErr is the Ignition parse error, nil when it parsed.
	ParseErr error
	// Invalid lists every validation error of the config (the parse error among them).
	Invalid field.ErrorList

	// hash is the SHA-256 of the Ignition JSON when the config came through a ParseCache.
	hash [sha256.Size]byte
}

// Parse parses and validates mc.
func Parse(mc *mcfgv1.MachineConfig) *Parsed {
	p := &Parsed{Config: mc}
	p.Ignition, p.ParseErr = ParseIgnition(mc.Spec.Config.Raw)
	p.Invalid = validateSpec(mc, p.Ignition, p.ParseErr)
	return p
}

// maxContentEntries bounds the parse results ParseCache keeps by content.
const maxContentEntries = 4096

// ParseCache keeps parsed configs between renders, keyed by UID and resourceVersion, so a render parses only
// the configs that changed since the last one; and it keeps each distinct Ignition config's parse (and
// validation) result by the SHA-256 of its JSON (at most maxContentEntries), so that a config whose object
// changed but whose Ignition did not (labels, annotations, owners), or the same Ignition in several
// configs, is validated once. It is safe for concurrent use. Configs without a UID or resourceVersion (not
// from the API server) are only looked up by content.
type ParseCache struct {
	mu      sync.Mutex
	entries map[types.UID]*Parsed
	content map[[sha256.Size]byte]parsedIgnition
}

// parsedIgnition is ParseIgnition's result for one content.
type parsedIgnition struct {
	ign ign3types.Config
	err error
}

// NewParseCache returns an empty cache.
func NewParseCache() *ParseCache {
	return &ParseCache{entries: map[types.UID]*Parsed{}, content: map[[sha256.Size]byte]parsedIgnition{}}
}

// Parse returns the parsed mc, from the cache when the same UID and resourceVersion were parsed before, else
// parsed with the Ignition result of the same content if the cache holds one. The result is the same as
// Parse(mc).
func (c *ParseCache) Parse(mc *mcfgv1.MachineConfig) *Parsed {
	if c == nil {
		return Parse(mc)
	}
	byUID := mc.UID != "" && mc.ResourceVersion != ""
	if byUID {
		c.mu.Lock()
		cached, ok := c.entries[mc.UID]
		c.mu.Unlock()
		if ok && cached.Config.ResourceVersion == mc.ResourceVersion {
			return cached
		}
	}
	key := sha256.Sum256(mc.Spec.Config.Raw)
	c.mu.Lock()
	res, ok := c.content[key]
	c.mu.Unlock()
	if !ok {
		res.ign, res.err = ParseIgnition(mc.Spec.Config.Raw)
	}
	p := &Parsed{Config: mc, Ignition: res.ign, ParseErr: res.err, hash: key}
	p.Invalid = validateSpec(mc, p.Ignition, p.ParseErr)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !ok {
		if len(c.content) >= maxContentEntries {
			for k := range c.content { // any one: the bound matters, not which
				delete(c.content, k)
				break
			}
		}
		c.content[key] = res
	}
	if byUID {
		c.entries[mc.UID] = p
	}
	return p
}

// Retain drops every entry whose config is not among existing, so the cache holds at most the cluster's
// configs, and the content results no remaining entry has.
func (c *ParseCache) Retain(existing []*mcfgv1.MachineConfig) {
	if c == nil {
		return
	}
	keep := make(map[types.UID]struct{}, len(existing))
	for _, mc := range existing {
		keep[mc.UID] = struct{}{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	hashes := make(map[[sha256.Size]byte]struct{}, len(c.entries))
	for uid, p := range c.entries {
		if _, ok := keep[uid]; !ok {
			delete(c.entries, uid)
			continue
		}
		hashes[p.hash] = struct{}{}
	}
	for k := range c.content {
		if _, ok := hashes[k]; !ok {
			delete(c.content, k)
		}
	}
}

// Len returns the number of cached configs.
func (c *ParseCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// parseError formats a parse error the way merge errors name configs.
func parseError(p *Parsed) error {
	return fmt.Errorf("machineconfig %q: spec.config: %w", p.Config.Name, p.ParseErr)
}
