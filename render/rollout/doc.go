// Package rollout is the node controller of the render core: keyed by MachineConfigPool, it moves the pool's
// nodes to the pool's rendered config (and, for a layered pool, to the image its MachineOSConfig built) a few
// at a time, and reports the pool's status as `oc get mcp` shows it.
//
// A pass observes the pool, every pool (for membership), the pool's nodes, its MachineOSConfig and
// MachineOSBuild, and the nodes' MachineConfigNodes; decides with pure functions — PoolsForNode (which pool a
// node belongs to), SelectCandidates (maxUnavailable, capacity, zone/age order), IsDoneAt/NeedsTargeting
// (node predicates), CalculateStatus (counts and conditions) and Decide (the whole pass); and then acts: it
// patches only the node annotations and taint that change, creates or patches MachineConfigNode specs, and
// writes the pool status once through the status subresource. A pass over unchanged state writes nothing.
// A paused pool only gets its status; a layered pool moves only once the build for its current rendered
// config has succeeded and the MachineOSConfig names its image.
//
// A pool named by a RolloutPolicy (rollouts.imagemode.io) moves in the policy's waves: progressive.Decide
// restricts the candidates to the current wave's waiting nodes within the wave's maxUnavailable, names the
// nodes to move back to what they ran before (a failed gate with Rollback, an abort), and gives the health
// checks the targeted nodes get (rollouts.imagemode.io/health-checks, in the same patch as the target); the
// policy's status, which is also the rollout's memory, is written before the nodes move, with events. Without a
// policy nothing of this runs.
package rollout
