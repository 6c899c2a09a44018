// Package machineconfig is the pure core that turns a pool's MachineConfigs into one rendered config: it
// parses Ignition of every supported spec (2.x and 3.0–3.5, converted to 3.5), validates each config with
// errors that name the config and field, merges them in the reference order (merge.go lists the rules),
// decides whether a change is reconcilable on a running node, and names the result
// rendered-<pool>-<hash>. Nothing here talks to the API server, the clock or the disk.
package machineconfig
