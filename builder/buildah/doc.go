// Package buildah builds container images in-process with the buildah library and pushes them.
//
// It sets every option this machine needs and that the library does not default safely: chroot isolation
// (crun cannot run on hybrid cgroups), no network stub (netavark is absent), ulimits no higher than the
// process's own hard limits, an explicit signature policy, and removal of intermediate containers (the
// default leaks overlay mounts). A program that builds must call Reexec first thing in main (or TestMain):
// chroot RUN steps re-execute the current binary.
//
// The digest a build is known by is the one the registry returns on push: local image IDs and pushed
// manifest digests differ once layers are compressed.
package buildah
