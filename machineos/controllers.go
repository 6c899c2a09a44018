package machineos

import (
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	// BaseImageRecheck is how often a base OS image given by tag is resolved again: when the tag moved, the
	// image is built again (DefaultBaseImageRecheck when 0). BaseImageTimeout bounds one resolution
	// (DefaultBaseImageTimeout when 0).
	BaseImageRecheck, BaseImageTimeout time.Duration
	// Signer signs the images of builds with a signing key; nil signs in the registry the build pushed to,
	// with the push secret (tests wrap it).
	Signer func(ImageSigner) ImageSigner
}

// AddToManager registers the build service's controllers: MachineOSConfigs and MachineOSBuilds.
func AddToManager(mgr ctrl.Manager, opts Options) error {
	images := &RegistryChecker{Reader: mgr.GetAPIReader(), Namespace: opts.Jobs.Namespace, ControllerConfigName: opts.ControllerConfigName}
	if err := (&ConfigReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("machineosbuilder"),
		Namespace: opts.Jobs.Namespace, Images: images, Bases: images,
		BaseImageRecheck: opts.BaseImageRecheck, BaseImageTimeout: opts.BaseImageTimeout}).SetupWithManager(mgr); err != nil {
		return err
	}
	var signer ImageSigner = images
	if opts.Signer != nil {
		signer = opts.Signer(images)
	}
	m, err := NewMetrics(metrics.Registry)
	if err != nil {
		return err
	}
	return (&BuildReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("machineosbuilder"),
		Jobs: opts.Jobs, ControllerConfigName: opts.ControllerConfigName, Metrics: m, Signer: signer}).SetupWithManager(mgr)
}

// CacheOptions restricts the manager's cache to the build service's own Jobs, Pods and ConfigMaps: those
// labelled on-cluster-layering in namespace (the build namespace; all namespaces when empty). It never caches
// other workloads' objects, and needs no cluster-wide list permission on them. Secrets are never cached
// (only their metadata, in namespace): the build service reads the two it uses directly. Use it in the
// manager's options.
func CacheOptions(namespace string) cache.Options {
	ours := labels.SelectorFromSet(labels.Set{wellknown.OnClusterLayeringLabel: ""})
	by := func() cache.ByObject {
		b := cache.ByObject{Label: ours}
		if namespace != "" {
			b.Namespaces = map[string]cache.Config{namespace: {}}
		}
		return b
	}
	secretMeta := cache.ByObject{}
	if namespace != "" {
		secretMeta.Namespaces = map[string]cache.Config{namespace: {}}
	}
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&batchv1.Job{}:      by(),
		&corev1.ConfigMap{}: by(),
		&corev1.Pod{}:       by(),
		// The registry garbage collector watches the metadata of the namespace's Secrets (a fixed push
		// secret retries its deletions); their contents are never cached.
		&metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}}: secretMeta,
	}}
}
