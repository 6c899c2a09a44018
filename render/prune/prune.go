package prune

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/imagemode/imagemode/internal/wellknown"
)

// UnknownPool is the pool of a candidate that is neither owned by a pool nor named after one, as the
// reference prints it.
const UnknownPool = "unknown"

// poolKind is the kind of the owner that makes a MachineConfig a rendered config.
const poolKind = "MachineConfigPool"

// renderedName matches rendered-<pool>-<hash> as the render controller names its configs (32 hex digits).
var renderedName = regexp.MustCompile(`^` + regexp.QuoteMeta(wellknown.RenderedPrefix) + `(.+)-[0-9a-f]{32}$`)

// ErrNegativeCount is returned for a negative --count.
var ErrNegativeCount = errors.New("count cannot be negative")

// PoolNotFoundError is returned when --pool-name names no existing MachineConfigPool.
type PoolNotFoundError struct {
	// Name is the pool asked for.
	Name string
}

// Error returns the reference's message for an unknown pool.
func (e *PoolNotFoundError) Error() string {
	return fmt.Sprintf("MachineConfigPool with name '%s' not found", e.Name)
}

// Inventory is the cluster state a prune decision reads. The order of each list does not matter.
type Inventory struct {
	// Configs are all MachineConfigs, rendered or not.
	Configs []mcfgv1.MachineConfig
	// Pools are all MachineConfigPools.
	Pools []mcfgv1.MachineConfigPool
	// Nodes are all nodes, whatever their pool.
	Nodes []corev1.Node
	// MachineOSBuilds are all MachineOSBuilds.
	MachineOSBuilds []mcfgv1.MachineOSBuild
	// MachineConfigNodes are all MachineConfigNodes.
	MachineConfigNodes []mcfgv1.MachineConfigNode
}

// Options are the selection flags of the prune command.
type Options struct {
	// PoolName keeps only the candidates of this pool (--pool-name); empty keeps all.
	PoolName string
	// Count is the most configs to delete (--count); 0 deletes every unused candidate.
	Count int
}

// Candidate is a rendered MachineConfig, with why it is in use.
type Candidate struct {
	// Name is the MachineConfig's name.
	Name string
	// UID is the MachineConfig's UID, so a delete can be made conditional on it.
	UID types.UID
	// Pool is the pool that owns it, else the pool its name names, else UnknownPool.
	Pool string
	// Created is its creation time, in UTC.
	Created time.Time
	// Reasons say what uses it (e.g. "node worker-0 currentConfig"); empty when nothing does.
	Reasons []string
}

// InUse reports whether anything references the candidate.
func (c Candidate) InUse() bool { return len(c.Reasons) > 0 }

// Verdict is what a plan does with a candidate.
type Verdict string

const (
	// Delete deletes the candidate: nothing uses it.
	Delete Verdict = "delete"
	// Skip keeps the candidate because it is in use; the skip is reported.
	Skip Verdict = "skip"
	// Keep keeps the candidate silently: --count was reached before it.
	Keep Verdict = "keep"
)

// Action is one candidate and its verdict.
type Action struct {
	Candidate
	// Verdict is delete, skip or keep.
	Verdict Verdict
}

// Plan is the outcome of a prune decision.
type Plan struct {
	// Actions holds every candidate of the selected pool(s), in the order the prune walks them.
	Actions []Action
}

// Deletions returns the actions that delete, in order.
func (p Plan) Deletions() []Action {
	var out []Action
	for _, a := range p.Actions {
		if a.Verdict == Delete {
			out = append(out, a)
		}
	}
	return out
}

// PoolConfig is a pool's current rendered configs, as `list --in-use` prints them.
type PoolConfig struct {
	// Pool is the pool's name.
	Pool string `json:"name"`
	// Status is status.configuration.name: the config all the pool's nodes have reached.
	Status string `json:"status"`
	// Spec is spec.configuration.name: the config the pool's nodes are moving to.
	Spec string `json:"spec"`
}

// RenderedPool reports whether mc is a rendered config and, if so, its pool: the controlling
// MachineConfigPool's name, or for an unowned config named rendered-<pool>-<hash> and carrying the
// generated-by-controller-version annotation, the pool in its name (UnknownPool when the name has no hash).
// User configs, even annotated copies of rendered ones under another name, are never rendered configs.
func RenderedPool(mc *mcfgv1.MachineConfig) (string, bool) {
	if owner := metav1.GetControllerOf(mc); owner != nil {
		gv, err := schema.ParseGroupVersion(owner.APIVersion)
		if err == nil && gv.Group == wellknown.Group && owner.Kind == poolKind && owner.Name != "" {
			return owner.Name, true
		}
		return "", false
	}
	if len(mc.OwnerReferences) > 0 || !strings.HasPrefix(mc.Name, wellknown.RenderedPrefix) {
		return "", false
	}
	if _, ok := mc.Annotations[wellknown.GeneratedByControllerVersionAnnotation]; !ok {
		return "", false
	}
	if m := renderedName.FindStringSubmatch(mc.Name); m != nil {
		return m[1], true
	}
	return UnknownPool, true
}

// InUse returns, for each MachineConfig name something references, the references in a stable order:
// pools' spec and status configurations, nodes' current, desired and first-pivot config annotations,
// MachineOSBuilds' spec.machineConfig and MachineConfigNodes' spec.configVersion.desired.
func InUse(inv Inventory) map[string][]string {
	uses := map[string][]string{}
	add := func(name, reason string) {
		if name != "" {
			uses[name] = append(uses[name], reason)
		}
	}
	for _, p := range sortedByName(inv.Pools, func(p mcfgv1.MachineConfigPool) string { return p.Name }) {
		add(p.Spec.Configuration.Name, "pool "+p.Name+" spec.configuration")
		add(p.Status.Configuration.Name, "pool "+p.Name+" status.configuration")
	}
	nodeAnnotations := []struct{ key, label string }{
		{wellknown.CurrentConfigAnnotation, "currentConfig"},
		{wellknown.DesiredConfigAnnotation, "desiredConfig"},
		{wellknown.FirstPivotConfigAnnotation, "firstPivotConfig"},
	}
	for _, n := range sortedByName(inv.Nodes, func(n corev1.Node) string { return n.Name }) {
		for _, a := range nodeAnnotations {
			add(n.Annotations[a.key], "node "+n.Name+" "+a.label)
		}
	}
	for _, b := range sortedByName(inv.MachineOSBuilds, func(b mcfgv1.MachineOSBuild) string { return b.Name }) {
		add(b.Spec.MachineConfig.Name, "machineosbuild "+b.Name+" spec.machineConfig")
	}
	for _, m := range sortedByName(inv.MachineConfigNodes, func(m mcfgv1.MachineConfigNode) string { return m.Name }) {
		add(m.Spec.ConfigVersion.Desired, "machineconfignode "+m.Name+" spec.configVersion.desired")
	}
	return uses
}

// Candidates returns every rendered MachineConfig of the inventory with its pool and in-use reasons,
// ordered by name.
func Candidates(inv Inventory) []Candidate {
	uses := InUse(inv)
	var out []Candidate
	for i := range inv.Configs {
		mc := &inv.Configs[i]
		pool, ok := RenderedPool(mc)
		if !ok {
			continue
		}
		out = append(out, Candidate{
			Name:    mc.Name,
			UID:     mc.UID,
			Pool:    pool,
			Created: mc.CreationTimestamp.UTC(),
			Reasons: uses[mc.Name],
		})
	}
	slices.SortFunc(out, func(a, b Candidate) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// List returns the candidates of poolName (all pools when empty) grouped by pool, oldest first within a
// pool: what `list` prints. A poolName that names no pool is a *PoolNotFoundError.
func List(inv Inventory, poolName string) ([]Candidate, error) {
	cands, err := selectPool(inv, poolName)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(cands, byPoolThenAge)
	return cands, nil
}

// NewPlan decides what a prune deletes. The candidates of opts.PoolName (all pools when empty) are walked
// oldest first when a pool or a count is given, else grouped by pool and oldest first within a pool (the
// reference's orders; equal creation times go by name). Walking, in-use candidates are skipped and unused
// ones deleted until opts.Count deletions (0: no limit); the rest are kept.
func NewPlan(inv Inventory, opts Options) (Plan, error) {
	if opts.Count < 0 {
		return Plan{}, ErrNegativeCount
	}
	cands, err := selectPool(inv, opts.PoolName)
	if err != nil {
		return Plan{}, err
	}
	if opts.PoolName != "" || opts.Count > 0 {
		slices.SortStableFunc(cands, byAge)
	} else {
		slices.SortStableFunc(cands, byPoolThenAge)
	}
	plan := Plan{Actions: make([]Action, 0, len(cands))}
	deleted := 0
	for _, c := range cands {
		verdict := Delete
		switch {
		case opts.Count > 0 && deleted == opts.Count:
			verdict = Keep
		case c.InUse():
			verdict = Skip
		default:
			deleted++
		}
		plan.Actions = append(plan.Actions, Action{Candidate: c, Verdict: verdict})
	}
	return plan, nil
}

// PoolConfigs returns the spec and status configurations of poolName (every pool when empty), ordered by
// pool name: what `list --in-use` prints. A poolName that names no pool is a *PoolNotFoundError.
func PoolConfigs(inv Inventory, poolName string) ([]PoolConfig, error) {
	var out []PoolConfig
	for _, p := range sortedByName(inv.Pools, func(p mcfgv1.MachineConfigPool) string { return p.Name }) {
		if poolName == "" || p.Name == poolName {
			out = append(out, PoolConfig{Pool: p.Name, Status: p.Status.Configuration.Name, Spec: p.Spec.Configuration.Name})
		}
	}
	if poolName != "" && len(out) == 0 {
		return nil, &PoolNotFoundError{Name: poolName}
	}
	return out, nil
}

// selectPool returns the candidates of poolName (all when empty), checking that the pool exists.
func selectPool(inv Inventory, poolName string) ([]Candidate, error) {
	cands := Candidates(inv)
	if poolName == "" {
		return cands, nil
	}
	if !slices.ContainsFunc(inv.Pools, func(p mcfgv1.MachineConfigPool) bool { return p.Name == poolName }) {
		return nil, &PoolNotFoundError{Name: poolName}
	}
	return slices.DeleteFunc(cands, func(c Candidate) bool { return c.Pool != poolName }), nil
}

func byAge(a, b Candidate) int {
	if c := a.Created.Compare(b.Created); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

func byPoolThenAge(a, b Candidate) int {
	if c := strings.Compare(a.Pool, b.Pool); c != 0 {
		return c
	}
	return byAge(a, b)
}

// sortedByName returns a copy of items ordered by name, so reasons come out in a stable order.
func sortedByName[T any](items []T, name func(T) string) []T {
	out := slices.Clone(items)
	slices.SortFunc(out, func(a, b T) int { return strings.Compare(name(a), name(b)) })
	return out
}
