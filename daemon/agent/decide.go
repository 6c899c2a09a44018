package agent

import (
	"fmt"
	"slices"
	"strings"

	"github.com/imagemode/imagemode/daemon"
	"github.com/imagemode/imagemode/internal/wellknown"
)

// Target is what a node runs or should run: a rendered config and, in a layered pool, an OS image.
type Target struct {
	Config string `json:"config"`
	Image  string `json:"image,omitempty"`
}

func (t Target) String() string {
	if t.Image == "" {
		return t.Config
	}
	return t.Config + " with image " + t.Image
}

// Phase is how far an update recorded in the journal got.
type Phase string

const (
	// PhaseApplying: files and the OS deployment are being written; on restart the update is redone.
	PhaseApplying Phase = "Applying"
	// PhaseApplied: files, OS deployment and the on-disk record are written; the post-change actions
	// (reboot or rebootless actions) are still to do.
	PhaseApplied Phase = "Applied"
	// PhaseActionsDone: the rebootless actions were performed (or the reboot happened).
	PhaseActionsDone Phase = "ActionsDone"
)

// Journal is the daemon's record of an update in progress, kept next to the on-disk current config so
// that a daemon killed at any step resumes where it stopped: it neither redoes a reboot that happened nor
// loses one that was owed.
type Journal struct {
	Target Target `json:"target"`
	// From is the on-disk target the update started from.
	From Target `json:"from"`
	// Actions are the post-change actions, in order (daemon.Action strings, e.g. "Reload crio.service").
	Actions []daemon.Action `json:"actions"`
	// Drain records whether the node was drained for the update.
	Drain bool  `json:"drain,omitempty"`
	Phase Phase `json:"phase"`
	// BootID is the boot in which the phase was reached: a different boot ID later means the node rebooted.
	BootID string `json:"bootID,omitempty"`
}

// Reboots reports whether the journal's actions include a reboot.
func (j *Journal) Reboots() bool {
	return slices.ContainsFunc(j.Actions, func(a daemon.Action) bool { return a.Type == daemon.ActionReboot })
}

// Facts are what the daemon observes before each step: the Node's annotations, the host's on-disk record,
// its journal and boot.
type Facts struct {
	// Desired is the node's desiredConfig and desiredImage annotations.
	Desired Target
	// Annotated is the node's currentConfig and currentImage annotations.
	Annotated Target
	// State is the node's state annotation.
	State                          string
	DesiredDrain, LastAppliedDrain string
	// OnDisk is the on-disk current config and image; nil when the host has none (never configured).
	OnDisk *Target
	// Journal is the update in progress, if any.
	Journal *Journal
	// BootID identifies the current boot.
	BootID string
	// Force is set when the force file exists.
	Force bool
}

// StepKind is the next thing the daemon does.
type StepKind string

const (
	// StepWait: nothing to do until the Node or a config changes.
	StepWait StepKind = "Wait"
	// StepUpdate: plan an update from the on-disk config to the desired one and apply it (it may first
	// request a drain and wait for it).
	StepUpdate StepKind = "Update"
	// StepReboot: the journal owes a reboot in this boot.
	StepReboot StepKind = "Reboot"
	// StepPostActions: the journal's rebootless actions are still to do.
	StepPostActions StepKind = "PostActions"
	// StepFinish: the actions were done or the node rebooted: check the booted OS, restore files the OS
	// switch may have dropped, and close the journal.
	StepFinish StepKind = "Finish"
	// StepUncordon: the update is complete on the host; ask for the node to be uncordoned.
	StepUncordon StepKind = "Uncordon"
	// StepValidate: the host is on the desired target: validate it on disk and report Done (or drift).
	StepValidate StepKind = "Validate"
)

// Step is Decide's verdict; Why says it in words (for logs and the node's reason).
type Step struct {
	Kind StepKind
	Why  string
	// Rebooted is set on StepFinish when the boot changed since the actions were recorded.
	Rebooted bool
}

// Decide picks the daemon's next step from what it observes. It is pure: the same facts always give the
// same step, and a step's effects change the facts so that the next call moves on.
func Decide(f Facts) Step {
	if f.Desired.Config == "" {
		return Step{Kind: StepWait, Why: "the node has no desiredConfig yet"}
	}
	if f.Force {
		if j := f.Journal; j != nil && j.Target == f.Desired && j.Phase != PhaseApplying {
			// The forced update is written; carry on with its actions.
			return resume(f, j)
		}
		return Step{Kind: StepUpdate, Why: "the force file " + wellknown.ForceFile + " exists"}
	}
	if j := f.Journal; j != nil {
		if j.Target != f.Desired {
			return Step{Kind: StepUpdate, Why: fmt.Sprintf("the desired target changed to %s during the update to %s", f.Desired, j.Target)}
		}
		return resume(f, j)
	}
	if f.OnDisk == nil {
		return Step{Kind: StepUpdate, Why: "the host has no current config on disk"}
	}
	if *f.OnDisk != f.Desired {
		return Step{Kind: StepUpdate, Why: fmt.Sprintf("the host runs %s, the node should run %s", *f.OnDisk, f.Desired)}
	}
	verb, _, _ := strings.Cut(f.DesiredDrain, "-")
	uncordon := wellknown.UncordonVerb + "-" + f.Desired.Config
	switch {
	case verb == wellknown.DrainVerb:
		return Step{Kind: StepUncordon, Why: "the update is complete; the node was drained for it"}
	case f.DesiredDrain == uncordon && f.LastAppliedDrain != uncordon:
		return Step{Kind: StepWait, Why: "waiting for the node to be uncordoned"}
	}
	return Step{Kind: StepValidate, Why: "the host runs the desired target"}
}

func resume(f Facts, j *Journal) Step {
	switch j.Phase {
	case PhaseApplied:
		if j.BootID != f.BootID {
			return Step{Kind: StepFinish, Rebooted: true, Why: "the node rebooted into " + j.Target.String()}
		}
		if j.Reboots() {
			return Step{Kind: StepReboot, Why: "the update to " + j.Target.String() + " is written and needs a reboot"}
		}
		return Step{Kind: StepPostActions, Why: "the update to " + j.Target.String() + " is written; its actions are still to do"}
	case PhaseActionsDone:
		return Step{Kind: StepFinish, Rebooted: j.BootID != f.BootID, Why: "the actions of the update to " + j.Target.String() + " are done"}
	default:
		return Step{Kind: StepUpdate, Why: "the update to " + j.Target.String() + " was interrupted while writing; redoing it"}
	}
}

// MergePendingActions folds the actions still owed by an interrupted journal (written, but neither its reboot
// nor its rebootless actions done in this boot) into the actions of a new plan: a reboot owed stays owed,
// whatever the new plan says.
func MergePendingActions(pending *Journal, bootID string, planned []daemon.Action) []daemon.Action {
	if pending == nil || pending.Phase != PhaseApplied || pending.BootID != bootID {
		return planned
	}
	if pending.Reboots() {
		return []daemon.Action{{Type: daemon.ActionReboot}}
	}
	var out []daemon.Action
	for _, a := range append(slices.Clone(pending.Actions), planned...) {
		if a.Type == daemon.ActionReboot {
			return []daemon.Action{a}
		}
		if a.Type == daemon.ActionNone || slices.Contains(out, a) {
			continue
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return []daemon.Action{{Type: daemon.ActionNone}}
	}
	return out
}
