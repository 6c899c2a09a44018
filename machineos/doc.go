// Package machineos is the build service's control logic: reconcilers keyed by MachineOSConfig and
// MachineOSBuild that turn a pool's MachineOSConfig into MachineOSBuilds named <mosc>-<hash>, start and
// follow their builds, record the pushed image's digest and hand it to the rollout — matching the
// observable contract of OpenShift's on-cluster layering (names, labels, annotations, conditions).
//
// Not implemented yet: this package is the home of issue #6's reconcilers.
package machineos
