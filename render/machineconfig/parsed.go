package machineconfig

import (
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
}

// Parse parses and validates mc.
func Parse(mc *mcfgv1.MachineConfig) *Parsed {
	p := &Parsed{Config: mc}
	p.Ignition, p.ParseErr = ParseIgnition(mc.Spec.Config.Raw)
	p.Invalid = validateSpec(mc, p.Ignition, p.ParseErr)
	return p
}

// ParseCache keeps parsed configs between renders, keyed by UID and resourceVersion, so a render parses only
// the configs that changed since the last one. It is safe for concurrent use. Configs without a UID or
// resourceVersion (not from the API server) are parsed every time.
type ParseCache struct {
	mu      sync.Mutex
	entries map[types.UID]*Parsed
}

// NewParseCache returns an empty cache.
func NewParseCache() *ParseCache {
	return &ParseCache{entries: map[types.UID]*Parsed{}}
}

// Parse returns the parsed mc, from the cache when the same UID and resourceVersion were parsed before.
func (c *ParseCache) Parse(mc *mcfgv1.MachineConfig) *Parsed {
	if c == nil || mc.UID == "" || mc.ResourceVersion == "" {
		return Parse(mc)
	}
	c.mu.Lock()
	cached, ok := c.entries[mc.UID]
	c.mu.Unlock()
	if ok && cached.Config.ResourceVersion == mc.ResourceVersion {
		return cached
	}
	p := Parse(mc)
	c.mu.Lock()
	c.entries[mc.UID] = p
	c.mu.Unlock()
	return p
}

// Retain drops every entry whose config is not among existing, so the cache holds at most the cluster's
// configs.
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
	for uid := range c.entries {
		if _, ok := keep[uid]; !ok {
			delete(c.entries, uid)
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
