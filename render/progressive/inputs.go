// Package progressive holds the pure decisions of a RolloutPolicy: given the policy (its spec and the
// status that is the rollout's memory), the pool's target, its nodes as the rollout controller observes them
// and the clock, Decide computes the waves' membership and state, each node's phase and gate verdict, which
// nodes may start now (the current wave's waiting nodes, within its maxUnavailable, outside a pause and
// inside a maintenance window), which nodes go back to what they ran before (on a failed gate with
// Rollback, or an abort), the policy's new status and when to look again. It does no I/O; render/rollout
// observes, calls Decide, and acts.
package progressive

import (
	"time"

	rolloutsv1 "github.com/imagemode/imagemode/api/rollouts/v1alpha1"
)

// Target is a config and (for a layered pool) an image.
type Target = rolloutsv1.RolloutTarget

// Node is one pool node as the rollout controller observes it.
type Node struct {
	Name   string
	Labels map[string]string
	// Current is the node's currentConfig/currentImage; Desired its desiredConfig/desiredImage.
	Current, Desired Target
	// Done: the daemon finished Desired (current = desired, state Done).
	Done bool
	// Ready: Ready condition True, no pressure, schedulable.
	Ready bool
	// Degraded: the daemon reports Degraded or Unreconcilable; Reason its reason annotation.
	Degraded bool
	Reason   string
	// Draining: the daemon asked for a drain for Desired; Rebooting: it queued a reboot.
	Draining, Rebooting bool
	// MCNUpdated: the node's MachineConfigNode says Updated=True on Desired's config. MCNDegraded is the
	// message of its NodeDegraded=True condition ("" when not degraded).
	MCNUpdated  bool
	MCNDegraded string
	// Health is the daemon's health report (nil when none).
	Health *rolloutsv1.HealthReport
}

// Inputs is everything Decide depends on.
type Inputs struct {
	Policy *rolloutsv1.RolloutPolicy
	// Target is what the pool's nodes should run now.
	Target Target
	// Nodes are the pool's nodes in update order (zone, then age).
	Nodes []Node
	Now   time.Time
}

// Decision is what a pass does under the policy.
type Decision struct {
	// Err is an invalid spec (the field is named): nothing moves.
	Err error
	// Allowed are the nodes that may be moved to Target now, in order; at most MaxUnavailable of the
	// pool's nodes may be unavailable while they update.
	Allowed        []string
	MaxUnavailable int
	// Rollback maps each node that must run what it ran before to that target.
	Rollback map[string]Target
	// HealthChecks are the checks to give each node moved to Target (nil when the policy has none).
	HealthChecks *rolloutsv1.NodeHealthChecks
	// Status is the policy's new status.
	Status rolloutsv1.RolloutPolicyStatus
	// RequeueAfter is when the decision may change with no other event (0: no timer).
	RequeueAfter time.Duration
}

// Defaults.
const (
	DefaultHealthTimeout = 30 * time.Minute
	// RestWaveName names the implicit last wave of the nodes no wave takes.
	RestWaveName = "rest"
)
