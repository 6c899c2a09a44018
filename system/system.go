// Package system assembles the cluster side of imagemode: it knows every controller the system runs and
// adds them all to one controller-runtime manager with their options — rendering, generated registries
// configs, node disruption policy status, rollout and drain (render), the build service (machineos) and the
// registry garbage collector (registry/gc). The controller binary (cmd/imagemode-controller) and the
// embedded local default (package local) both assemble the system through it, so the two cannot drift.
//
// The tree reads top-down: binaries (cmd/) → assembly (system, local) → services (machineos, render,
// registry/gc, daemon/agent, builder) → cores (render/machineconfig, layering, daemon) → leaves
// (internal/wellknown, internal/scheme, machineos/osbuild). No package below this one imports it.
package system

import (
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/imagemode/imagemode/builder/jobs"
	"github.com/imagemode/imagemode/internal/scheme"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos"
	"github.com/imagemode/imagemode/registry/gc"
	"github.com/imagemode/imagemode/render"
)

// Options are the settings of the whole cluster side.
type Options struct {
	// Namespace holds build Jobs, their ConfigMaps and Secrets, the pull and push secrets and the registry
	// GC's tombstones; wellknown.MCONamespace when empty.
	Namespace string
	// Version is written to generated-by-controller-version on the configs the controllers write.
	Version string
	// BuilderImage is the image build pods run (the service image, holding imagemode-builder).
	BuilderImage string
	// BuildCacheHostPath is the host directory build pods keep their image store in, as a layer cache
	// (empty: none).
	BuildCacheHostPath string
	// BuildPodsHostNetwork runs build pods on the host network (jobs.Options.HostNetwork).
	BuildPodsHostNetwork bool
}

func (o Options) namespace() string {
	if o.Namespace == "" {
		return wellknown.MCONamespace
	}
	return o.Namespace
}

// ManagerOptions returns the manager options the system needs, on top of base: the project's scheme and
// the cache the build service relies on (its Jobs and ConfigMaps, in the namespace only). Fields already
// set in base are kept.
func ManagerOptions(base ctrl.Options, o Options) ctrl.Options {
	if base.Scheme == nil {
		base.Scheme = scheme.New()
	}
	if base.Cache.ByObject == nil {
		base.Cache.ByObject = machineos.CacheOptions(o.namespace()).ByObject
	}
	return base
}

// AddToManager adds every cluster-side controller to mgr. mgr must have been created with ManagerOptions.
func AddToManager(mgr ctrl.Manager, o Options) error {
	ns := o.namespace()
	ro := render.Options{Version: o.Version}
	if err := render.AddToManager(mgr, ro); err != nil {
		return fmt.Errorf("registering render controllers: %w", err)
	}
	bo := machineos.Options{
		Jobs:                 jobs.Options{Namespace: ns, Image: o.BuilderImage, CacheHostPath: o.BuildCacheHostPath, HostNetwork: o.BuildPodsHostNetwork},
		ControllerConfigName: wellknown.ControllerConfigName,
	}
	if err := machineos.AddToManager(mgr, bo); err != nil {
		return fmt.Errorf("registering the build service: %w", err)
	}
	gco := gc.Options{Namespace: ns, ControllerConfigName: wellknown.ControllerConfigName}
	if err := gc.AddToManager(mgr, gco); err != nil {
		return fmt.Errorf("registering the registry garbage collector: %w", err)
	}
	return nil
}
