// Package agent is the node agent's state machine: a level-triggered reconciler keyed by its own Node.
//
// Each pass observes the Node's annotations (desiredConfig/desiredImage, state, the drain handshake), the
// host's on-disk record (/etc/machine-config-daemon/currentconfig and currentimage, the truth after a reboot
// or an etcd restore) and its update journal, lets the pure Decide pick one step, performs it through the
// narrow host interfaces of package daemon, and returns. The steps are: plan and apply an update (files,
// units, core user, then the OS: rebase to the layered image, kernel arguments and, in a classic pool, the
// kernel type and extensions as rpm-ostree package changes, then the on-disk record),
// after requesting a drain when the node disruption policies need one; queue the reboot the update owes, or
// perform its rebootless actions; finish after the reboot (check the booted image, write the config's files
// again); ask for the uncordon; validate the host and report Done, or Degraded with the drift.
//
// Nothing blocks: a drain or an uncordon is requested by annotation and the pass returns; the drain
// controller's answer wakes the agent. The journal makes every step resumable: a daemon killed at any point
// neither redoes a reboot that happened nor loses one that was owed. The node's MachineConfigNode gets the
// reference's conditions, and the mcd_* metrics are kept.
//
// Bad input is refused before any write: a config naming a host path configs may not manage (daemon.CheckPaths,
// ".." resolved) degrades the node with the path; one the node cannot move to (machineconfig.Reconcilable)
// makes it Unreconcilable with the reason, not retried until the target changes. A failed write puts the
// previous config's files back (daemon.ApplyConfig) and is retried with back-off.
package agent
