// Package plancmd is `imagemode plan -f <change.yaml>`: before a MachineConfig, MachineOSConfig, mirror set,
// image config or pool change is applied, it shows for each affected pool the rendered config the change
// leads to, whether the pool's layered image must be rebuilt, and for each node of the pool the disruption
// it will get (Reboot, Drain, DaemonReload, Reload or Restart of which service, None) and whether it is
// drained.
//
// Nothing here decides anything of its own: Compute applies the change to a snapshot of the cluster (State)
// and asks the same pure functions the controllers and the daemon use — containerruntime.Desired for the
// generated registries configs, renderer.Render for the rendered configs, rollout.NodesForPool for pool
// membership, machineos.Decide for the build, disruption.MergeClusterPolicies for the node disruption
// policies, and daemon.Diff, daemon.Actions and daemon.NeedsDrain for each node. The snapshot is read from the
// cluster (LoadLive, read-only) or from a folder of YAML files (LoadDir, --offline), which also prints the new
// rendered configs.
package plancmd
