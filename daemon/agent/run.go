package agent

import (
	"context"
	"fmt"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	opv1 "github.com/openshift/api/operator/v1"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/workqueue"
	kptr "k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/imagemode/imagemode/daemon"
	"github.com/imagemode/imagemode/internal/scheme"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/registry/signing"
)

// SetupWithManager registers the agent: it reconciles its own node, and is woken by changes to
// MachineConfigs, the MachineConfiguration with the disruption policies, its MachineConfigNode and the
// config drift monitor.
func (a *Agent) SetupWithManager(mgr ctrl.Manager) error {
	own := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: a.opts.NodeName}}}
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("daemon-"+a.opts.NodeName).
		For(&corev1.Node{}, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
			return o.GetName() == a.opts.NodeName
		}))).
		Watches(&mcfgv1.MachineConfig{}, own, builder.WithPredicates(predicate.GenerationChangedPredicate{},
			predicate.NewPredicateFuncs(a.namedByNode))).
		Watches(&opv1.MachineConfiguration{}, own).
		WatchesRawSource(source.Channel(a.driftEvent, own)).
		WithOptions(controllerOptions()).
		Complete(a)
}

// namedByNode passes the MachineConfigs the node's current and desired config annotations name: a change
// to any other config in the cluster does not concern this node, and waking every daemon (each validating
// its host) on every config change is work that grows with the cluster. A config the node comes to name
// later is in the cache by the time the node's own event shows the new name. When the node cannot be read
// from the cache, every config passes.
func (a *Agent) namedByNode(o client.Object) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // the cache may still be syncing
	defer cancel()
	node := &corev1.Node{}
	if err := a.client.Get(ctx, client.ObjectKey{Name: a.opts.NodeName}, node); err != nil {
		return true
	}
	an := node.Annotations
	return o.GetName() == an[wellknown.DesiredConfigAnnotation] || o.GetName() == an[wellknown.CurrentConfigAnnotation]
}

// NewManager returns a manager for one node's agent: its cache holds only that node (and the cluster-scoped
// configs the agent reads), it serves no metrics unless metricsAddr is set, and it has no leader election.
func NewManager(cfg *rest.Config, nodeName, metricsAddr string) (ctrl.Manager, error) {
	if metricsAddr == "" {
		metricsAddr = "0"
	}
	return ctrl.NewManager(cfg, manager.Options{
		Scheme:  scheme.New(),
		Metrics: metricsserver.Options{BindAddress: metricsAddr},
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&corev1.Node{}:               {Field: fields.OneTermEqualSelector("metadata.name", nodeName)},
			&mcfgv1.MachineConfigNode{}:  {Field: fields.OneTermEqualSelector("metadata.name", nodeName)},
			&opv1.MachineConfiguration{}: {},
			&mcfgv1.MachineConfig{}:      {},
		}},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: kptr.To(true)},
	})
}

// Run runs the agent of opts.NodeName until ctx ends (a simulated node's reboot cancels it).
func Run(ctx context.Context, cfg *rest.Config, opts Options, reg prometheus.Registerer) error {
	mgr, err := NewManager(cfg, opts.NodeName, "")
	if err != nil {
		return fmt.Errorf("daemon of node %s: %w", opts.NodeName, err)
	}
	if opts.Metrics == nil && reg != nil {
		if opts.Metrics, err = NewMetrics(reg); err != nil {
			return err
		}
	}
	if opts.TrustedKeys == nil {
		opts.TrustedKeys = &signing.ConfigMapKeys{Reader: mgr.GetAPIReader(), Namespace: wellknown.MCONamespace}
	}
	a, err := New(mgr.GetClient(), mgr.GetEventRecorder("machineconfigdaemon"), opts)
	if err != nil {
		return err
	}
	if err := a.SetupWithManager(mgr); err != nil {
		return err
	}
	defer a.stopDrift()
	return mgr.Start(ctx)
}

// startDrift (re)starts the config drift monitor for mc; a drift, or its fix, wakes the agent.
func (a *Agent) startDrift(ctx context.Context, mc *mcfgv1.MachineConfig) {
	a.driftMu.Lock()
	defer a.driftMu.Unlock()
	if a.drift != nil && a.driftFor == mc.Name+"/"+mc.ResourceVersion {
		return
	}
	if a.drift != nil {
		a.drift.Stop()
		a.drift = nil
	}
	m, err := daemon.StartDriftMonitor(context.WithoutCancel(ctx), a.opts.Host.Root(), a.opts.Host.Systemd(), mc, func(error) {
		select {
		case a.driftEvent <- event.GenericEvent{Object: &corev1.Node{}}:
		default:
		}
	})
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "starting the config drift monitor")
		return
	}
	a.drift, a.driftFor = m, mc.Name+"/"+mc.ResourceVersion
}

func (a *Agent) stopDrift() {
	a.driftMu.Lock()
	defer a.driftMu.Unlock()
	if a.drift != nil {
		a.drift.Stop()
		a.drift, a.driftFor = nil, ""
	}
}

// noRegistry accepts every collector without exposing it.
type noRegistry struct{}

func (noRegistry) Register(prometheus.Collector) error  { return nil }
func (noRegistry) MustRegister(...prometheus.Collector) {}
func (noRegistry) Unregister(prometheus.Collector) bool { return true }

// controllerOptions: one pass at a time; failed passes are retried from 500 ms up to every 30 s.
func controllerOptions() controller.Options {
	return controller.Options{MaxConcurrentReconciles: 1,
		RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](500*time.Millisecond, 30*time.Second)}
}
