package machineos

import (
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/imagemode/imagemode/builder/jobs"
)

// Options configures the build service.
type Options struct {
	// Jobs configures build Jobs (namespace, service image, layer cache, proxy).
	Jobs jobs.Options
	// ControllerConfigName names the ControllerConfig with registry CAs ("machine-config-controller").
	ControllerConfigName string
}

// AddToManager registers the build service's controllers: MachineOSConfigs and MachineOSBuilds.
func AddToManager(mgr ctrl.Manager, opts Options) error {
	if err := (&ConfigReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("machineosbuilder"),
		Namespace: opts.Jobs.Namespace}).SetupWithManager(mgr); err != nil {
		return err
	}
	m, err := NewMetrics(metrics.Registry)
	if err != nil {
		return err
	}
	return (&BuildReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("machineosbuilder"),
		Jobs: opts.Jobs, ControllerConfigName: opts.ControllerConfigName, Metrics: m}).SetupWithManager(mgr)
}
