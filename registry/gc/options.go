package gc

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/imagemode/imagemode/registry"
)

// Options configures the collector.
type Options struct {
	// Namespace holds the push secrets, digest ConfigMaps and tombstones ("openshift-machine-config-operator").
	Namespace string
	// ControllerConfigName names the ControllerConfig with the registry CAs and proxy.
	ControllerConfigName string
	// RetainBuilds is how many successful builds per MachineOSConfig are kept besides the current one
	// (the imagemode.io/retain-builds annotation overrides it); nil means registry.DefaultRetainBuilds.
	RetainBuilds *int
	// DisableRetention turns the retention reconciler off (deleted builds are still cleaned up).
	DisableRetention bool
	// Deleter deletes by digest; the zero value makes one attempt per reconcile (retries are requeues).
	Deleter registry.Deleter
	// RetryBackoff is the first wait after a failed deletion, doubled after each failure up to
	// MaxRetryBackoff; 5 s and 5 min when 0.
	RetryBackoff, MaxRetryBackoff time.Duration
	// Registerer receives the metrics; controller-runtime's metrics.Registry when nil.
	Registerer prometheus.Registerer
}

func (o Options) withDefaults() Options {
	if o.Deleter.Attempts == 0 {
		o.Deleter.Attempts = 1
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = 5 * time.Second
	}
	if o.MaxRetryBackoff <= 0 {
		o.MaxRetryBackoff = 5 * time.Minute
	}
	if o.Registerer == nil {
		o.Registerer = metrics.Registry
	}
	return o
}

// AddToManager registers the collector's reconcilers (builds, tombstones and, unless disabled, retention).
// The manager's cache must hold the ConfigMaps labelled on-cluster-layering (machineos.CacheOptions does);
// the collector watches Secrets as metadata only.
func AddToManager(mgr ctrl.Manager, opts Options) error {
	if opts.Namespace == "" {
		return errors.New("gc: Options.Namespace is required")
	}
	opts = opts.withDefaults()
	m, err := NewMetrics(opts.Registerer)
	if err != nil {
		return err
	}
	cleaner := &Cleaner{Reader: mgr.GetAPIReader(), Namespace: opts.Namespace,
		ControllerConfigName: opts.ControllerConfigName, Deleter: opts.Deleter}
	rep := &reporter{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("imagemode-registry-gc"),
		Namespace: opts.Namespace, Metrics: m}
	if err := (&BuildReconciler{Client: mgr.GetClient(), Cleaner: cleaner, reporter: rep}).SetupWithManager(mgr); err != nil {
		return err
	}
	tr := &TombstoneReconciler{Client: mgr.GetClient(), Cleaner: cleaner, reporter: rep,
		backoff: newBackoff(opts.RetryBackoff, opts.MaxRetryBackoff)}
	if err := tr.SetupWithManager(mgr); err != nil {
		return err
	}
	if opts.DisableRetention {
		return nil
	}
	keep := registry.DefaultRetainBuilds
	if opts.RetainBuilds != nil {
		keep = *opts.RetainBuilds
	}
	return (&RetentionReconciler{Client: mgr.GetClient(), Recorder: rep.Recorder, Keep: keep}).SetupWithManager(mgr)
}

// Metrics are the collector's Prometheus metrics.
type Metrics struct {
	// BytesFreed is imagemode_registry_bytes_freed_total: the manifest-listed sizes (compressed layers
	// plus config) of the images deleted.
	BytesFreed prometheus.Counter
	// ImagesDeleted is imagemode_registry_images_deleted_total{result}: deletion attempts by result
	// (deleted, already_gone, in_use, access_denied, unavailable, error).
	ImagesDeleted *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them on reg; collectors registered already (a second
// manager in one process) are reused.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	bytes := prometheus.NewCounter(prometheus.CounterOpts{Name: "imagemode_registry_bytes_freed_total",
		Help: "Manifest-listed bytes (compressed layers and config) of the images deleted from registries"})
	images := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "imagemode_registry_images_deleted_total",
		Help: "Image deletion attempts by result"}, []string{"result"})
	if err := reg.Register(bytes); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, fmt.Errorf("registering imagemode_registry_bytes_freed_total: %w", err)
		}
		bytes = are.ExistingCollector.(prometheus.Counter)
	}
	if err := reg.Register(images); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, fmt.Errorf("registering imagemode_registry_images_deleted_total: %w", err)
		}
		images = are.ExistingCollector.(*prometheus.CounterVec)
	}
	return &Metrics{BytesFreed: bytes, ImagesDeleted: images}, nil
}

// backoff remembers, per tombstone, the failures in a row and when the next registry attempt is due.
type backoff struct {
	base, max time.Duration
	now       func() time.Time
	mu        sync.Mutex
	items     map[string]backoffItem
}

type backoffItem struct {
	failures int
	next     time.Time
}

func newBackoff(base, max time.Duration) *backoff {
	return &backoff{base: base, max: max, now: time.Now, items: map[string]backoffItem{}}
}

// remaining is how long to wait before trying name again (0: now).
func (b *backoff) remaining(name string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	it, ok := b.items[name]
	if !ok {
		return 0
	}
	return max(0, it.next.Sub(b.now()))
}

// failed records a failure and returns the wait before the next try: base, then doubled up to max.
func (b *backoff) failed(name string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	it := b.items[name]
	wait := b.base
	for i := 0; i < it.failures && wait < b.max; i++ {
		wait *= 2
	}
	wait = min(wait, b.max)
	it.failures++
	it.next = b.now().Add(wait)
	b.items[name] = it
	return wait
}

// forget clears name's failures (after a success, or when its push secret changed).
func (b *backoff) forget(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.items, name)
}
