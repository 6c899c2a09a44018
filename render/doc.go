// Package render is the shared core that turns a pool's MachineConfigs into one rendered MachineConfig
// (Ignition merge, validation, reconcilability, rendered names), and moves a pool's nodes to it (rollout,
// drain, pool status), including registries.conf generation and node disruption policy status.
//
// Not implemented yet: this package is the home of issues #4 and #5.
package render
