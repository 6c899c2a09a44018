package render

import (
	"fmt"

	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/imagemode/imagemode/render/containerruntime"
	"github.com/imagemode/imagemode/render/disruption"
	"github.com/imagemode/imagemode/render/drain"
	"github.com/imagemode/imagemode/render/renderer"
	"github.com/imagemode/imagemode/render/rollout"
)

// Options configures the render-side controllers.
type Options struct {
	// Version is written to generated-by-controller-version on the configs the controllers write.
	Version string
	// Drain are the drain controller's timings; zero values take drain.DefaultOptions.
	Drain drain.Options
}

// AddToManager registers the render-side controllers with mgr: rendering of pools, the generated
// registries configs of the built-in pools, and the node disruption policy status of
// MachineConfiguration/cluster.
// It also registers the rollout (node) controller, which moves pools' nodes and reports pool status, and the
// drain controller, which performs the daemons' drain requests.
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
	if err := (&rollout.Reconciler{
		Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("machineconfigcontroller-nodecontroller"),
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(mgr.GetConfig())
	if err != nil {
		return fmt.Errorf("creating the drain controller's clientset: %w", err)
	}
	drainMetrics, err := drain.NewMetrics(metrics.Registry)
	if err != nil {
		return err
	}
	if err := (&drain.Reconciler{
		Kube: kube, Recorder: mgr.GetEventRecorder("machineconfigcontroller-draincontroller"), Metrics: drainMetrics, Options: opts.Drain,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	return (&disruption.PolicyStatusReconciler{Client: mgr.GetClient()}).SetupWithManager(mgr)
}
