package render

import (
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/imagemode/imagemode/render/containerruntime"
	"github.com/imagemode/imagemode/render/disruption"
	"github.com/imagemode/imagemode/render/renderer"
)

// Options configures the render-side controllers.
type Options struct {
	// Version is written to generated-by-controller-version on the configs the controllers write.
	Version string
}

// AddToManager registers the render-side controllers with mgr: rendering of pools, the generated
// registries configs of the built-in pools, and the node disruption policy status of
// MachineConfiguration/cluster.
func AddToManager(mgr ctrl.Manager, opts Options) error {
	if err := (&renderer.Reconciler{
		Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("machineconfigcontroller-rendercontroller"), Version: opts.Version,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&containerruntime.Reconciler{
		Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("machineconfigcontroller-containerruntimeconfigcontroller"), Version: opts.Version,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	return (&disruption.PolicyStatusReconciler{Client: mgr.GetClient()}).SetupWithManager(mgr)
}
