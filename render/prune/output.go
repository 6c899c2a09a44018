package prune

import (
	"fmt"
	"strings"
	"time"
)

// DryRunNotice is what the reference prints on standard error before a dry run.
const DryRunNotice = "Dry run enabled - no modifications will be made. Add --confirm to remove rendered machine configs."

// listWidth is the width the reference centres pool headings in.
const listWidth = 80

// Message is the line the reference prints for the action: "[dry-run ]deleting rendered MachineConfig X"
// for a deletion (after it succeeded), "Skip [dry-run ]deleting rendered MachineConfig X as it's currently
// in use" for a skip, and "" for a candidate kept because --count was reached.
func (a Action) Message(dryRun bool) string {
	verb := "deleting"
	if dryRun {
		verb = "dry-run deleting"
	}
	switch a.Verdict {
	case Delete:
		return verb + " rendered MachineConfig " + a.Name
	case Skip:
		return "Skip " + verb + " rendered MachineConfig " + a.Name + " as it's currently in use"
	default:
		return ""
	}
}

// FormatList renders candidates as the reference's `list` does: a heading centred in 80 columns for each
// pool, then "<name> -- <created> (Currently in use: <bool>)" per config, each after an empty line. The
// creation time is printed as Go prints a UTC time ("2025-01-02 15:04:05 +0000 UTC"), like the reference.
func FormatList(cands []Candidate) string {
	var b strings.Builder
	pool := ""
	for i, c := range cands {
		if i == 0 || c.Pool != pool {
			pad := (listWidth - len(c.Pool)) / 2
			fmt.Fprintf(&b, "\n%*s\n", pad+len(c.Pool), c.Pool)
			pool = c.Pool
		}
		fmt.Fprintf(&b, "\n%s -- %s (Currently in use: %t)\n", c.Name, c.Created.UTC(), c.InUse())
	}
	return b.String()
}

// FormatPoolConfigs renders pools as the reference's `list --in-use` does: "<pool>\nstatus: <x>\nspec: <y>\n"
// per pool.
func FormatPoolConfigs(pools []PoolConfig) string {
	var b strings.Builder
	for _, p := range pools {
		fmt.Fprintf(&b, "%s\nstatus: %s\nspec: %s\n", p.Pool, p.Status, p.Spec)
	}
	return b.String()
}

// Result is what happened to a deletion, in -o json output.
type Result string

const (
	// Deleted: the API server deleted the config.
	Deleted Result = "deleted"
	// DryRunDeleted: the API server accepted a dry-run deletion; nothing was deleted.
	DryRunDeleted Result = "dry-run"
	// AlreadyGone: the config no longer existed when it was to be deleted.
	AlreadyGone Result = "not-found"
	// Failed: the deletion returned an error (see Item.Error).
	Failed Result = "error"
)

// Item is one rendered MachineConfig in -o json output.
type Item struct {
	// Name is the MachineConfig's name.
	Name string `json:"name"`
	// Pool is its pool (see Candidate.Pool).
	Pool string `json:"pool"`
	// Created is its creation time, RFC 3339 in UTC.
	Created string `json:"created"`
	// InUse reports whether anything references it.
	InUse bool `json:"inUse"`
	// Reasons say what references it; never null.
	Reasons []string `json:"reasons"`
	// Action is the plan's verdict; empty in list output.
	Action Verdict `json:"action,omitempty"`
	// Result is what the deletion did; empty unless Action is delete and it was attempted.
	Result Result `json:"result,omitempty"`
	// Error is the deletion's error when Result is error.
	Error string `json:"error,omitempty"`
}

// PruneReport is the -o json document of a prune.
type PruneReport struct {
	// DryRun is true unless --confirm was given.
	DryRun bool `json:"dryRun"`
	// Items are the plan's actions in order; never null.
	Items []Item `json:"items"`
}

// ListReport is the -o json document of `list`.
type ListReport struct {
	// Items are the candidates in list order; never null.
	Items []Item `json:"items"`
}

// PoolsReport is the -o json document of `list --in-use`.
type PoolsReport struct {
	// Pools are the pools' configurations; never null.
	Pools []PoolConfig `json:"pools"`
}

// NewPruneReport returns the -o json document of plan, without results: the caller fills Items[i].Result
// (and Error) as it carries out Actions[i].
func NewPruneReport(plan Plan, dryRun bool) PruneReport {
	r := PruneReport{DryRun: dryRun, Items: make([]Item, 0, len(plan.Actions))}
	for _, a := range plan.Actions {
		it := newItem(a.Candidate)
		it.Action = a.Verdict
		r.Items = append(r.Items, it)
	}
	return r
}

// NewListReport returns the -o json document of the candidates `list` prints.
func NewListReport(cands []Candidate) ListReport {
	r := ListReport{Items: make([]Item, 0, len(cands))}
	for _, c := range cands {
		r.Items = append(r.Items, newItem(c))
	}
	return r
}

// NewPoolsReport returns the -o json document of the pools `list --in-use` prints.
func NewPoolsReport(pools []PoolConfig) PoolsReport {
	if pools == nil {
		pools = []PoolConfig{}
	}
	return PoolsReport{Pools: pools}
}

func newItem(c Candidate) Item {
	reasons := c.Reasons
	if reasons == nil {
		reasons = []string{}
	}
	return Item{Name: c.Name, Pool: c.Pool, Created: c.Created.UTC().Format(time.RFC3339), InUse: c.InUse(), Reasons: reasons}
}
