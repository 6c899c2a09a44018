package machineos

import (
	"context"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/registry"
)

// ImageChecker tells whether a built image still exists in its registry.
type ImageChecker interface {
	ImageExists(ctx context.Context, mosc *mcfgv1.MachineOSConfig, pullspec string) (bool, error)
}

// RegistryChecker asks the registry, with the MachineOSConfig's push secret and the cluster's registry CAs.
type RegistryChecker struct {
	// Reader reads the push secret and the ControllerConfig straight from the API server (secrets are never
	// cached).
	Reader               client.Reader
	Namespace            string
	ControllerConfigName string
}

// ImageExists inspects pullspec in its registry. Not found is false; any other failure (credentials, a
// registry that is down) is an error: an image is never rebuilt because it could not be looked at.
func (c *RegistryChecker) ImageExists(ctx context.Context, mosc *mcfgv1.MachineOSConfig, pullspec string) (bool, error) {
	sys, cleanup, err := registry.NewClusterSystemContext(ctx, c.Reader, registry.ClusterAuth{Namespace: c.Namespace,
		SecretName: mosc.Spec.RenderedImagePushSecret.Name, ControllerConfigName: c.ControllerConfigName})
	if err != nil {
		return false, err
	}
	defer cleanup()
	return registry.Exists(ctx, sys, pullspec)
}

// BaseImageResolver resolves a MachineOSConfig's base OS image (a tag) to its digested pull spec.
type BaseImageResolver interface {
	ResolveBaseImage(ctx context.Context, mosc *mcfgv1.MachineOSConfig, pullspec string) (string, error)
}

// ResolveBaseImage reads pullspec's manifest digest with the MachineOSConfig's base image pull secret
// (global-pull-secret-copy when it names none) and the cluster's registry CAs, and returns
// repository@sha256:….
func (c *RegistryChecker) ResolveBaseImage(ctx context.Context, mosc *mcfgv1.MachineOSConfig, pullspec string) (string, error) {
	sys, cleanup, err := registry.NewClusterSystemContext(ctx, c.Reader, registry.ClusterAuth{Namespace: c.Namespace,
		SecretName: basePullSecretName(mosc), ControllerConfigName: c.ControllerConfigName})
	if err != nil {
		return "", err
	}
	defer cleanup()
	return registry.ResolveDigest(ctx, sys, pullspec)
}
