// Package machineos is the build service's control logic: reconcilers keyed by MachineOSConfig and
// MachineOSBuild that turn a pool's MachineOSConfig into MachineOSBuilds named <mosc>-<hash>, start and
// follow their builds, record the pushed image's digest and hand it to the rollout — matching the
// observable contract of OpenShift's on-cluster layering (names, labels, annotations, conditions).
//
// The decisions are pure functions: BuildName (naming.go), the build state machine (state.go), and what a
// MachineOSConfig needs next; the reconcilers only observe, call them and apply the result.
package machineos
