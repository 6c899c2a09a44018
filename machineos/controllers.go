package machineos

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/imagemode/imagemode/builder/jobs"
	"github.com/imagemode/imagemode/internal/wellknown"
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
	images := &RegistryChecker{Reader: mgr.GetAPIReader(), Namespace: opts.Jobs.Namespace, ControllerConfigName: opts.ControllerConfigName}
	if err := (&ConfigReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("machineosbuilder"),
		Namespace: opts.Jobs.Namespace, Images: images}).SetupWithManager(mgr); err != nil {
		return err
	}
	m, err := NewMetrics(metrics.Registry)
	if err != nil {
		return err
	}
	return (&BuildReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("machineosbuilder"),
		Jobs: opts.Jobs, ControllerConfigName: opts.ControllerConfigName, Metrics: m}).SetupWithManager(mgr)
}

// CacheOptions restricts the manager's cache to the build service's own Jobs and ConfigMaps (labelled
// on-cluster-layering): it never caches other workloads' objects. Secrets are never cached at all: the build
// service reads the two it uses directly. Use it in the manager's options.
func CacheOptions() cache.Options {
	ours := labels.SelectorFromSet(labels.Set{wellknown.OnClusterLayeringLabel: ""})
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&batchv1.Job{}:      {Label: ours},
		&corev1.ConfigMap{}: {Label: ours},
		&corev1.Pod{}:       {Label: ours},
	}}
}
