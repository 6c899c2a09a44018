package agent

import (
	"context"
	"fmt"
	"slices"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The MachineConfigNode condition types the daemon writes (openshift/api), each pre-created False with
// reason NotYetOccurred. A child condition's reason is its parent's type followed by its own, as in the
// reference (e.g. UpdateExecutedDrained).
var mcnConditionTypes = []mcfgv1.StateProgress{
	mcfgv1.MachineConfigNodeUpdatePrepared,
	mcfgv1.MachineConfigNodeUpdateExecuted,
	mcfgv1.MachineConfigNodeUpdatePostActionComplete,
	mcfgv1.MachineConfigNodeUpdateComplete,
	mcfgv1.MachineConfigNodeUpdated,
	mcfgv1.MachineConfigNodeResumed,
	mcfgv1.MachineConfigNodeUpdateDrained,
	mcfgv1.MachineConfigNodeUpdateFilesAndOS,
	mcfgv1.MachineConfigNodeUpdateCordoned,
	mcfgv1.MachineConfigNodeUpdateUncordoned,
	mcfgv1.MachineConfigNodeUpdateRebooted,
	mcfgv1.MachineConfigNodeNodeDegraded,
}

var mcnParents = map[mcfgv1.StateProgress]mcfgv1.StateProgress{
	mcfgv1.MachineConfigNodeUpdateDrained:            mcfgv1.MachineConfigNodeUpdateExecuted,
	mcfgv1.MachineConfigNodeUpdateCordoned:           mcfgv1.MachineConfigNodeUpdateExecuted,
	mcfgv1.MachineConfigNodeUpdateFilesAndOS:         mcfgv1.MachineConfigNodeUpdateExecuted,
	mcfgv1.MachineConfigNodeUpdateRebooted:           mcfgv1.MachineConfigNodeUpdatePostActionComplete,
	mcfgv1.MachineConfigNodeUpdateUncordoned:         mcfgv1.MachineConfigNodeUpdateComplete,
	mcfgv1.MachineConfigNodeResumed:                  mcfgv1.MachineConfigNodeUpdateComplete,
	mcfgv1.MachineConfigNodeUpdatePrepared:           "",
	mcfgv1.MachineConfigNodeUpdateExecuted:           "",
	mcfgv1.MachineConfigNodeUpdateComplete:           "",
	mcfgv1.MachineConfigNodeUpdated:                  "",
	mcfgv1.MachineConfigNodeNodeDegraded:             "",
	mcfgv1.MachineConfigNodeUpdatePostActionComplete: "",
}

// NotYetOccurred is the reason of a condition the daemon has not reached yet.
const NotYetOccurred = "NotYetOccurred"

// Cond is one condition change.
type Cond struct {
	Type    mcfgv1.StateProgress
	Status  metav1.ConditionStatus
	Message string
}

// conditionReason is a condition's reason: its parent's type and its own, or its own for a parent.
func conditionReason(t mcfgv1.StateProgress) string {
	if p := mcnParents[t]; p != "" {
		return string(p) + string(t)
	}
	return string(t)
}

// ApplyConditions returns conds with every daemon condition type present (missing ones False with reason
// NotYetOccurred) and the changes applied; a change to Updated=False (a new update starts) first resets
// every other condition to False, keeping its message behind "Action during update to <target>: ". It
// reports whether anything changed; a change that alters nothing keeps the transition time.
func ApplyConditions(conds []metav1.Condition, generation int64, target string, changes []Cond, now metav1.Time) ([]metav1.Condition, bool) {
	out := slices.Clone(conds)
	changed := false
	set := func(c metav1.Condition) {
		c.ObservedGeneration = generation
		if meta.SetStatusCondition(&out, c) {
			changed = true
		}
	}
	for _, t := range mcnConditionTypes {
		if meta.FindStatusCondition(out, string(t)) == nil {
			set(metav1.Condition{Type: string(t), Status: metav1.ConditionFalse, Reason: NotYetOccurred,
				Message: "This action has not yet occurred", LastTransitionTime: now})
		}
	}
	for _, ch := range changes {
		if ch.Type == mcfgv1.MachineConfigNodeUpdated && ch.Status == metav1.ConditionFalse {
			old := meta.FindStatusCondition(out, string(ch.Type))
			if old == nil || old.Status != metav1.ConditionFalse || old.Message != ch.Message {
				for i := range out {
					c := &out[i]
					if c.Type == string(ch.Type) || c.Status == metav1.ConditionFalse {
						continue
					}
					c.Status, c.LastTransitionTime = metav1.ConditionFalse, now
					c.Message = fmt.Sprintf("Action during update to %s: %s", target, c.Message)
					changed = true
				}
			}
		}
		set(metav1.Condition{Type: string(ch.Type), Status: ch.Status, Reason: conditionReason(ch.Type),
			Message: ch.Message, LastTransitionTime: now})
	}
	return out, changed
}

// updateMCN writes condition changes and the config versions to the node's MachineConfigNode, if the
// rollout has created it (it is named after the node); a missing one is skipped.
func (a *Agent) updateMCN(ctx context.Context, current, desired string, changes ...Cond) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		mcn := &mcfgv1.MachineConfigNode{}
		if err := a.client.Get(ctx, client.ObjectKey{Name: a.opts.NodeName}, mcn); err != nil {
			return err
		}
		before := mcn.DeepCopy()
		conds, _ := ApplyConditions(mcn.Status.Conditions, mcn.Generation, desired, changes, metav1.NewTime(a.opts.Clock.Now()))
		mcn.Status.Conditions = conds
		if mcn.Generation > 0 {
			mcn.Status.ObservedGeneration = mcn.Generation
		}
		if current == "" && mcn.Status.ConfigVersion != nil {
			current = mcn.Status.ConfigVersion.Current
		}
		if current != "" && desired != "" {
			mcn.Status.ConfigVersion = &mcfgv1.MachineConfigNodeStatusMachineConfigVersion{Current: current, Desired: desired}
		}
		if equalStatus(before.Status, mcn.Status) {
			return nil
		}
		return a.client.Status().Update(ctx, mcn)
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("updating MachineConfigNode %s: %w", a.opts.NodeName, err)
	}
	return nil
}

func equalStatus(a, b mcfgv1.MachineConfigNodeStatus) bool {
	if a.ObservedGeneration != b.ObservedGeneration || len(a.Conditions) != len(b.Conditions) {
		return false
	}
	if (a.ConfigVersion == nil) != (b.ConfigVersion == nil) || (a.ConfigVersion != nil && *a.ConfigVersion != *b.ConfigVersion) {
		return false
	}
	for i := range a.Conditions {
		x, y := a.Conditions[i], b.Conditions[i]
		if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason || x.Message != y.Message {
			return false
		}
	}
	return true
}
