// Package render is the shared core that turns a pool's MachineConfigs into one rendered MachineConfig
// (Ignition merge, validation, reconcilability, rendered names), and moves a pool's nodes to it (rollout,
// drain, pool status), including registries.conf generation and node disruption policy status.
//
// Subpackages: machineconfig (the pure merge core), renderer (the render controller), registries and
// containerruntime (registries.conf), disruption (node disruption policies), poolstatus (pool conditions),
// prune (unused rendered configs). AddToManager registers the controllers.
package render
