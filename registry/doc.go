// Package registry talks to OCI registries with containers/image (docker transport): it reads what an image
// is (manifest digest, labels, size) for the build service and the rollout, and — in later parts — deletes
// images for the pruner. Callers pass a *types.SystemContext they built (credentials, CA directory, proxy);
// this package never reads /etc or $HOME on its own.
package registry
