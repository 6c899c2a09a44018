package osbuild

import (
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// State is the state of a MachineOSBuild, read from its conditions.
type State string

// Build states. Initial has no True condition; Prepared and Building are transient; the rest are terminal.
const (
	StateInitial     State = ""
	StatePrepared    State = State(mcfgv1.MachineOSBuildPrepared)
	StateBuilding    State = State(mcfgv1.MachineOSBuilding)
	StateSucceeded   State = State(mcfgv1.MachineOSBuildSucceeded)
	StateFailed      State = State(mcfgv1.MachineOSBuildFailed)
	StateInterrupted State = State(mcfgv1.MachineOSBuildInterrupted)
)

// conditionOrder is the order the five build conditions are written in; each has a fixed reason and
// message, as in the reference (Succeeded's reason is Ready).
var conditionOrder = [...]struct {
	t               mcfgv1.BuildProgress
	reason, message string
}{
	{mcfgv1.MachineOSBuildPrepared, "Prepared", "Build Prepared and Pending"},
	{mcfgv1.MachineOSBuilding, "Building", "Image Build In Progress"},
	{mcfgv1.MachineOSBuildFailed, "Failed", "Build Failed"},
	{mcfgv1.MachineOSBuildInterrupted, "Interrupted", "Build Interrupted"},
	{mcfgv1.MachineOSBuildSucceeded, "Ready", "Build Ready"},
}

// IsTerminal reports whether s never changes again.
func (s State) IsTerminal() bool {
	return s == StateSucceeded || s == StateFailed || s == StateInterrupted
}

// IsTransient reports whether a build in s is under way.
func (s State) IsTransient() bool { return s == StatePrepared || s == StateBuilding }

// stateOrder is the order StateOf looks for a True condition in: terminal states win over transient ones
// (a build carries exactly one True condition when this project writes it; the order only matters for
// conditions written by someone else).
var stateOrder = [...]State{StateSucceeded, StateFailed, StateInterrupted, StateBuilding, StatePrepared}

// StateOf reads a build's state: the type of its True condition, Initial when none is True.
func StateOf(mosb *mcfgv1.MachineOSBuild) State {
	for _, s := range stateOrder {
		for _, c := range mosb.Status.Conditions {
			if c.Type == string(s) && c.Status == metav1.ConditionTrue {
				return s
			}
		}
	}
	return StateInitial
}

// Display is the state as the CLI shows it: the state's name, "Pending" for Initial (no True condition
// yet), as `kubectl get machineosbuild` shows a build that has not started.
func (s State) Display() string {
	if s == StateInitial {
		return DisplayPending
	}
	return string(s)
}

// DisplayPending is how a build with no True condition is shown.
const DisplayPending = "Pending"

// CanTransition reports whether a build may go from one state to another: Initial to any state; Prepared to
// Building; a transient state to a terminal one; a state to itself. A terminal state never changes, so a
// failed or interrupted build is never restarted (a new build, or the rebuild annotation, is needed).
func CanTransition(from, to State) bool {
	switch {
	case from == to:
		return true
	case from == StateInitial:
		return true
	case from == StatePrepared && to == StateBuilding:
		return true
	case from.IsTransient() && to.IsTerminal():
		return true
	}
	return false
}

// Conditions returns the five build conditions for state s: all of them, exactly one True (none for
// Initial), with their fixed reasons and messages, followed by existing conditions of other types. Transition times are now for conditions that change
// status from existing and kept otherwise.
func Conditions(s State, existing []metav1.Condition, now metav1.Time) []metav1.Condition {
	out := make([]metav1.Condition, 0, len(conditionOrder))
	for _, k := range conditionOrder {
		status := metav1.ConditionFalse
		if State(k.t) == s {
			status = metav1.ConditionTrue
		}
		c := metav1.Condition{Type: string(k.t), Status: status, Reason: k.reason, Message: k.message, LastTransitionTime: now}
		for _, e := range existing {
			if e.Type == c.Type && e.Status == c.Status {
				c.LastTransitionTime = e.LastTransitionTime
			}
		}
		out = append(out, c)
	}
	// Conditions of other types (the build service's own, such as Signed) are kept as they are.
	for _, e := range existing {
		if !isStateCondition(e.Type) {
			out = append(out, e)
		}
	}
	return out
}

func isStateCondition(t string) bool {
	for _, k := range conditionOrder {
		if string(k.t) == t {
			return true
		}
	}
	return false
}

// BuildTimes returns the buildStart and buildEnd to record for a build that started at start and ended
// at now. The API requires buildEnd to be after buildStart, and times are stored to the second, so a build
// that ended within the second it started (a reuse, an immediate failure) ends one second after.
func BuildTimes(start, now metav1.Time) (metav1.Time, metav1.Time) {
	start = metav1.NewTime(start.Truncate(time.Second))
	end := metav1.NewTime(now.Truncate(time.Second))
	if !end.After(start.Time) {
		end = metav1.NewTime(start.Add(time.Second))
	}
	return start, end
}
