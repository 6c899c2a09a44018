// Package machineos is the build service's control logic: reconcilers keyed by MachineOSConfig and
// MachineOSBuild that turn a pool's MachineOSConfig into MachineOSBuilds named <mosc>-<hash>, start and
// follow their builds, record the pushed image's digest and hand it to the rollout — matching the
// observable contract of OpenShift's on-cluster layering (names, labels, annotations, conditions).
//
// The decisions are pure functions: BuildName (naming.go), the build state machine (package osbuild, which
// every other reader of builds shares), the Job-to-state mapping (jobstate.go), and what a
// MachineOSConfig needs next; the reconcilers only observe, call them and apply the result.
//
// A base OS image given by tag (the rendered osImageURL) is resolved to its digest with the base image pull
// secret and the cluster's registry CAs (baseimage.go), at most once per re-check interval
// (Options.BaseImageRecheck): the digest is part of the build's name and the build starts FROM it, so a tag
// that moves gives a new build and moving it back gives the old one. A registry error never starts a build:
// the current build's base image is kept and the BaseImageResolved condition and an event say why.
//
// A MachineOSConfig with a signing key (SigningKeySecretAnnotation, signing.go) has each pushed image signed
// (a sigstore attachment), attested (an in-toto SLSA provenance, provenance.go) and its public key published
// for the nodes, all before the build is Succeeded and its image handed out; the key stays in the build
// service and never reaches the build pod.
package machineos
