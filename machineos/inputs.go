package machineos

import (
	"github.com/imagemode/imagemode/registry"

	"context"
	"fmt"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// buildInputs are the objects a build is made from.
type buildInputs struct {
	mosc     *mcfgv1.MachineOSConfig
	pool     *mcfgv1.MachineConfigPool
	rendered *mcfgv1.MachineConfig
	// registryCAs are the ControllerConfig's registry CA bundles by file name (host..port).
	registryCAs map[string][]byte
}

// loadBuildInputs loads a build's MachineOSConfig, pool, rendered config and registry CAs. It returns nil
// without an error when one of them does not exist (yet): the build waits.
func (r *BuildReconciler) loadBuildInputs(ctx context.Context, mosb *mcfgv1.MachineOSBuild) (*buildInputs, error) {
	in := &buildInputs{mosc: &mcfgv1.MachineOSConfig{}, pool: &mcfgv1.MachineConfigPool{}, rendered: &mcfgv1.MachineConfig{}}
	if found, err := getOptional(ctx, r.Client, mosb.Spec.MachineOSConfig.Name, in.mosc); err != nil || !found {
		return nil, err
	}
	if found, err := getOptional(ctx, r.Client, in.mosc.Spec.MachineConfigPool.Name, in.pool); err != nil || !found {
		return nil, err
	}
	if found, err := getOptional(ctx, r.Client, mosb.Spec.MachineConfig.Name, in.rendered); err != nil || !found {
		return nil, err
	}
	cc := &mcfgv1.ControllerConfig{}
	if _, err := getOptional(ctx, r.Client, r.ControllerConfigName, cc); err != nil {
		return nil, err
	}
	in.registryCAs = registry.RegistryCAs(cc)
	return in, nil
}

// getOptional reads a cluster-scoped object and reports whether it exists.
func getOptional(ctx context.Context, c client.Reader, name string, obj client.Object) (bool, error) {
	if name == "" {
		return false, nil
	}
	err := c.Get(ctx, types.NamespacedName{Name: name}, obj)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading %T %s: %w", obj, name, err)
	}
	return true, nil
}
