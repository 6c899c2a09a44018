package renderer

import (
	"context"
	"fmt"
	"reflect"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/render/machineconfig"
	"github.com/imagemode/imagemode/render/poolstatus"
)

// Reconciler renders MachineConfigPools.
type Reconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	Clock    clock.PassiveClock
	// Version is written to the generated-by-controller-version annotation of rendered configs.
	Version string
	// Cache keeps parsed MachineConfigs between renders; SetupWithManager creates it when nil.
	Cache *machineconfig.ParseCache
}

// Reconcile renders one pool: observe, decide (Render), act, report.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	pool := &mcfgv1.MachineConfigPool{}
	if err := r.Client.Get(ctx, req.NamespacedName, pool); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if pool.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	in, err := r.observe(ctx, pool)
	if err != nil {
		return ctrl.Result{}, err
	}
	out := Render(in)
	if out.Failure != nil {
		logger.Info("render failed", "pool", pool.Name, "reason", out.Failure.Reason, "message", out.Failure.Message)
		return ctrl.Result{}, r.setRenderDegraded(ctx, pool, corev1.ConditionTrue, out.Failure.Reason, out.Failure.Message)
	}
	if err := r.ensureRendered(ctx, pool, out.Rendered); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.pointPoolAt(ctx, pool, out.Rendered.Name, out.Sources); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, r.setRenderDegraded(ctx, pool, corev1.ConditionFalse, ReasonRendered, "")
}

// observe loads everything Render needs.
func (r *Reconciler) observe(ctx context.Context, pool *mcfgv1.MachineConfigPool) (Inputs, error) {
	in := Inputs{Pool: pool, Version: r.Version, Cache: r.Cache}
	var mcs mcfgv1.MachineConfigList
	if err := r.Client.List(ctx, &mcs); err != nil {
		return in, fmt.Errorf("listing MachineConfigs: %w", err)
	}
	for i := range mcs.Items {
		in.Configs = append(in.Configs, &mcs.Items[i])
		if mcs.Items[i].Name == pool.Spec.Configuration.Name && pool.Spec.Configuration.Name != "" {
			in.Current = &mcs.Items[i]
		}
	}
	r.Cache.Retain(in.Configs)
	cc := &mcfgv1.ControllerConfig{}
	switch err := r.Client.Get(ctx, types.NamespacedName{Name: wellknown.ControllerConfigName}, cc); {
	case err == nil:
		in.ControllerConfig = cc
	case !apierrors.IsNotFound(err):
		return in, fmt.Errorf("reading ControllerConfig: %w", err)
	}
	return in, nil
}

// ensureRendered creates the rendered config, owned by the pool, unless it exists. An existing one with the
// same name has the same spec (the name is a digest of it).
func (r *Reconciler) ensureRendered(ctx context.Context, pool *mcfgv1.MachineConfigPool, rendered *mcfgv1.MachineConfig) error {
	existing := &mcfgv1.MachineConfig{}
	err := r.Client.Get(ctx, types.NamespacedName{Name: rendered.Name}, existing)
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading rendered config %s: %w", rendered.Name, err)
	}
	if err := controllerutil.SetControllerReference(pool, rendered, r.Client.Scheme()); err != nil {
		return err
	}
	if err := r.Client.Create(ctx, rendered); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating rendered config %s: %w", rendered.Name, err)
	}
	r.Recorder.Eventf(pool, nil, corev1.EventTypeNormal, EventRenderedConfigGenerated, "Render",
		"%s successfully generated (release version: %s, controller version: %s)", rendered.Name,
		rendered.Annotations[wellknown.ReleaseImageVersionAnnotation], r.Version)
	return nil
}

// pointPoolAt sets the pool's spec.configuration to the rendered config and its sources, if different.
func (r *Reconciler) pointPoolAt(ctx context.Context, pool *mcfgv1.MachineConfigPool, name string, sources []corev1.ObjectReference) error {
	want := mcfgv1.MachineConfigPoolStatusConfiguration{ObjectReference: corev1.ObjectReference{Name: name}, Source: sources}
	if reflect.DeepEqual(pool.Spec.Configuration, want) {
		return nil
	}
	before := pool.DeepCopy()
	pool.Spec.Configuration = want
	if err := r.Client.Patch(ctx, pool, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("pointing pool %s at %s: %w", pool.Name, name, err)
	}
	return nil
}

// setRenderDegraded writes the RenderDegraded condition when it changes, with a Warning event when True.
func (r *Reconciler) setRenderDegraded(ctx context.Context, pool *mcfgv1.MachineConfigPool, status corev1.ConditionStatus, reason, msg string) error {
	before := pool.DeepCopy()
	changed := poolstatus.SetCondition(&pool.Status, mcfgv1.MachineConfigPoolCondition{
		Type: mcfgv1.MachineConfigPoolRenderDegraded, Status: status, Reason: reason, Message: msg,
	}, metav1.NewTime(r.Clock.Now()))
	if !changed {
		return nil
	}
	if err := r.Client.Status().Patch(ctx, pool, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("writing RenderDegraded of pool %s: %w", pool.Name, err)
	}
	if status == corev1.ConditionTrue {
		r.Recorder.Eventf(pool, nil, corev1.EventTypeWarning, reason, "Render", "%s", msg)
	}
	return nil
}

// SetupWithManager registers the controller: pools, the MachineConfigs they select or own, and the
// ControllerConfig all lead to the pools' keys.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if r.Cache == nil {
		r.Cache = machineconfig.NewParseCache()
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("render").
		For(&mcfgv1.MachineConfigPool{}).
		Watches(&mcfgv1.MachineConfig{}, handler.EnqueueRequestsFromMapFunc(r.poolsForMachineConfig)).
		Watches(&mcfgv1.ControllerConfig{}, handler.EnqueueRequestsFromMapFunc(r.allPools)).
		Complete(r)
}

// poolsForMachineConfig maps a MachineConfig to the pool owning it and the pools whose selector matches it.
func (r *Reconciler) poolsForMachineConfig(ctx context.Context, obj client.Object) []reconcile.Request {
	var pools mcfgv1.MachineConfigPoolList
	if err := r.Client.List(ctx, &pools); err != nil {
		log.FromContext(ctx).Error(err, "listing pools for a MachineConfig event")
		return nil
	}
	var reqs []reconcile.Request
	owner := metav1.GetControllerOf(obj)
	for _, p := range pools.Items {
		if owner != nil && owner.Kind == "MachineConfigPool" && owner.Name == p.Name {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: p.Name}})
			continue
		}
		sel := p.Spec.MachineConfigSelector
		if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
			continue
		}
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err == nil && s.Matches(labels.Set(obj.GetLabels())) {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: p.Name}})
		}
	}
	return reqs
}

func (r *Reconciler) allPools(ctx context.Context, _ client.Object) []reconcile.Request {
	var pools mcfgv1.MachineConfigPoolList
	if err := r.Client.List(ctx, &pools); err != nil {
		log.FromContext(ctx).Error(err, "listing pools for a ControllerConfig event")
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(pools.Items))
	for _, p := range pools.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: p.Name}})
	}
	return reqs
}
