// Package osbuild holds the facts every component reads off a MachineOSBuild, defined once: its state
// (from its conditions, with the reference's condition reasons and messages and the allowed transitions),
// which build is current for a MachineOSConfig, and the names of the objects a build owns (its Job, its
// ConfigMaps and Secrets) with the keys the build pod and the build service exchange through them. It is
// a leaf: the build service (machineos), the Job builder (builder/jobs), the rollout (render/rollout),
// the registry garbage collector and the CLI all read builds through it.
package osbuild
