// Package registry talks to OCI registries with containers/image (docker transport): it reads what an image
// is (manifest digest, labels, size) for the build service and the rollout, and deletes images by digest
// for the pruner (with their sigstore signatures and attestations), retrying transient errors only. Callers pass a *types.SystemContext they built
// (credentials, CA directory, proxy); this package never reads /etc or $HOME on its own.
//
// Errors of registry operations are classified once, in errors.go (IsNotFound, IsAccessDenied,
// IsTransient, *ImageError with a condition reason). The decisions around deletion are pure functions:
// InUse says which objects still reference an image, SelectForRetention which builds of a
// MachineOSConfig are kept and which may go.
package registry
