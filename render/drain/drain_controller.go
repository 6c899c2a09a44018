package drain

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"
	kubedrain "k8s.io/kubectl/pkg/drain"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/imagemode/imagemode/internal/wellknown"
)

// ReasonDrainFailed is the reason of the Warning event about a drain failing for longer than StuckAfter.
const ReasonDrainFailed = "DrainFailed"

// uncordonedRetry is the wait before draining again a node that was uncordoned while it was being drained.
const uncordonedRetry = time.Second

// Reconciler is the drain controller.
type Reconciler struct {
	// Kube reads nodes live, cordons, lists and evicts pods (the drain library needs a clientset).
	Kube     kubernetes.Interface
	Recorder events.EventRecorder
	Metrics  *Metrics
	Clock    clock.PassiveClock
	Options  Options

	mu      sync.Mutex
	failing map[string]*failure
}

// failure tracks one node's failing drain request.
type failure struct {
	desired  string
	since    time.Time
	reported bool
}

// Reconcile performs one node's drain request.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	// A live read: the cache may not show yet the lastAppliedDrain this controller just wrote.
	node, err := r.Kube.CoreV1().Nodes().Get(ctx, req.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		r.forget(req.Name)
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("reading node %s: %w", req.Name, err)
	}
	action, desired, err := NextAction(node)
	if err != nil {
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	switch action {
	case ActionNone:
		r.forget(node.Name)
		return ctrl.Result{}, nil
	case ActionUncordon:
		if err := kubedrain.RunCordonOrUncordon(r.helper(ctx, node.Name), node, false); err != nil {
			return r.failed(ctx, node, desired, fmt.Errorf("uncordoning node %s: %w", node.Name, err))
		}
	case ActionDrain:
		h := r.helper(ctx, node.Name)
		if err := kubedrain.RunCordonOrUncordon(h, node, true); err != nil {
			return r.failed(ctx, node, desired, fmt.Errorf("cordoning node %s: %w", node.Name, err))
		}
		logger.Info("draining node", "node", node.Name, "request", desired)
		if err := kubedrain.RunNodeDrain(h, node.Name); err != nil {
			return r.failed(ctx, node, desired, fmt.Errorf("draining node %s: %w", node.Name, err))
		}
		// Uncordoned by someone while it was drained: pods may have landed again, so drain again.
		now, err := r.Kube.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		if err != nil {
			return ctrl.Result{}, fmt.Errorf("reading node %s after its drain: %w", node.Name, err)
		}
		if !now.Spec.Unschedulable {
			logger.Info("node was uncordoned while it was drained; draining it again", "node", node.Name)
			return ctrl.Result{RequeueAfter: uncordonedRetry}, nil
		}
	}
	if err := r.writeLastApplied(ctx, node.Name, desired); err != nil {
		return ctrl.Result{}, err
	}
	logger.Info("drain request performed", "node", node.Name, "action", action.String(), "request", desired)
	r.forget(node.Name)
	return ctrl.Result{}, nil
}

// helper returns the drain library's helper for one attempt: evictions (never plain deletes) that honour
// PodDisruptionBudgets, DaemonSet pods left in place, emptyDir data allowed to go, pods' own grace periods.
// Pods with no controller are refused (no Force): deleting them would lose them for good.
func (r *Reconciler) helper(ctx context.Context, node string) *kubedrain.Helper {
	w := logWriter{logger: log.FromContext(ctx).WithValues("node", node)}
	return &kubedrain.Helper{
		Ctx:                  ctx,
		Client:               r.Kube,
		GracePeriodSeconds:   -1,
		IgnoreAllDaemonSets:  true,
		DeleteEmptyDirData:   true,
		Timeout:              r.Options.AttemptTimeout,
		EvictErrorRetryDelay: r.Options.EvictRetryDelay,
		Out:                  w,
		ErrOut:               w,
	}
}

// failed records a failed attempt and schedules the next one; a drain failing for longer than StuckAfter is
// reported once (event and gauge).
func (r *Reconciler) failed(ctx context.Context, node *corev1.Node, desired string, err error) (ctrl.Result, error) {
	now := r.Clock.Now()
	r.mu.Lock()
	if r.failing == nil {
		r.failing = map[string]*failure{}
	}
	f := r.failing[node.Name]
	if f == nil || f.desired != desired {
		f = &failure{desired: desired, since: now}
		r.failing[node.Name] = f
	}
	failingFor := now.Sub(f.since)
	report := r.Options.IsStuck(failingFor) && !f.reported
	if report {
		f.reported = true
	}
	r.mu.Unlock()

	retry := r.Options.RetryAfter(failingFor)
	log.FromContext(ctx).Info("drain request failed; retrying", "node", node.Name, "request", desired,
		"failingFor", failingFor.Round(time.Second), "retryAfter", retry, "error", err.Error())
	if report {
		r.Metrics.DrainErr.WithLabelValues(node.Name).Set(1)
		r.Recorder.Eventf(node, nil, corev1.EventTypeWarning, ReasonDrainFailed, "Drain",
			"Drain request %s of node %s has been failing for %s: %v", desired, node.Name, failingFor.Round(time.Second), err)
	}
	return ctrl.Result{RequeueAfter: retry}, nil
}

// forget clears a node's failure and its gauge.
func (r *Reconciler) forget(node string) {
	r.mu.Lock()
	f := r.failing[node]
	delete(r.failing, node)
	r.mu.Unlock()
	if f != nil && f.reported {
		r.Metrics.DrainErr.WithLabelValues(node).Set(0)
	}
}

// writeLastApplied tells the daemon its request was performed.
func (r *Reconciler) writeLastApplied(ctx context.Context, node, desired string) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
		wellknown.LastAppliedDrainAnnotation: desired,
	}}})
	if err != nil {
		return fmt.Errorf("encoding lastAppliedDrain patch: %w", err)
	}
	if _, err := r.Kube.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("writing %s of node %s: %w", wellknown.LastAppliedDrainAnnotation, node, err)
	}
	return nil
}

// SetupWithManager registers the controller, with MaxConcurrentDrains workers so that one slow drain does
// not hold other nodes up.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	r.Options = r.Options.withDefaults()
	if r.Metrics == nil {
		return fmt.Errorf("setting up the drain controller: no metrics")
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("drain").
		For(&corev1.Node{}, builder.WithPredicates(DrainRequestPredicate{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Options.MaxConcurrentDrains}).
		Complete(r)
}

// logWriter sends the drain library's progress output to the log, one line at a time.
type logWriter struct {
	logger interface{ Info(string, ...any) }
}

func (w logWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if line != "" {
			w.logger.Info(line)
		}
	}
	return len(p), nil
}
