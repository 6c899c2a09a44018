package machineos

import (
	"context"
	"fmt"
	"os"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/registry"
	"github.com/imagemode/imagemode/registry/pullsecret"
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
	secret := &corev1.Secret{}
	name := mosc.Spec.RenderedImagePushSecret.Name
	if err := c.Reader.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: name}, secret); err != nil {
		return false, fmt.Errorf("reading push secret %s/%s: %w", c.Namespace, name, err)
	}
	creds, err := pullsecret.FromSecret(secret)
	if err != nil {
		return false, err
	}
	cc := &mcfgv1.ControllerConfig{}
	if _, err := getOptional(ctx, c.Reader, c.ControllerConfigName, cc); err != nil {
		return false, err
	}
	dir, err := os.MkdirTemp("", "imagemode-inspect-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	sys, err := registry.NewSystemContext(dir, creds.JSON(), RegistryCAs(cc))
	if err != nil {
		return false, err
	}
	return registry.Exists(ctx, sys, pullspec)
}
