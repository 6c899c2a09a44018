package gc

import (
	"context"
	"fmt"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos/osbuild"
)

// TombstoneReconciler retries the deletion of the images recorded in tombstones: when something that can
// reference an image changes, when a push secret changes, and with back-off after registry failures. It
// deletes a tombstone once its image is deleted or gone.
type TombstoneReconciler struct {
	Client  client.Client
	Cleaner *Cleaner
	*reporter
	backoff *backoff
}

// Reconcile handles one tombstone.
func (r *TombstoneReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	cm := &corev1.ConfigMap{}
	if err := r.Client.Get(ctx, req.NamespacedName, cm); err != nil {
		r.backoff.forget(req.Name)
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !IsTombstone(cm.Labels) || !cm.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	t, err := TargetOfTombstone(cm)
	if err != nil {
		r.Recorder.Eventf(cm, nil, corev1.EventTypeWarning, EventTombstoneMalformed, "DeleteImage", "%v", err)
		return ctrl.Result{}, nil // nothing to retry until someone edits it
	}
	if wait := r.backoff.remaining(req.Name); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	inv, err := LoadInventory(ctx, r.Client)
	if err != nil {
		return ctrl.Result{}, err
	}
	for _, b := range inv.MachineOSBuilds {
		if b.Name == t.MachineOSBuild && !b.DeletionTimestamp.IsZero() {
			inv.ExcludeBuild = b.Name // the build this tombstone outlives, on its way out
		}
	}
	res := r.Cleaner.Clean(ctx, t, inv)
	log.FromContext(ctx).V(1).Info("retried pending image deletion", "image", t.Image, "deleted", res.Deleted,
		"gone", res.Gone, "inUseBy", len(res.InUseBy), "error", res.Err)
	if len(res.InUseBy) == 0 {
		// Only registry outcomes are reported: an image still in use was reported when it was kept.
		if err := r.report(ctx, t, res, cm); err != nil {
			return ctrl.Result{}, err
		}
	}
	switch {
	case res.Done():
		r.backoff.forget(req.Name)
		return ctrl.Result{}, r.deleteConfigMap(ctx, cm.Name)
	case res.Err != nil:
		if err := r.saveTombstone(ctx, t, res); err != nil {
			return ctrl.Result{}, err
		}
		return ctrl.Result{RequeueAfter: r.backoff.failed(req.Name)}, nil
	default:
		r.backoff.forget(req.Name)
		return ctrl.Result{}, r.saveTombstone(ctx, t, res)
	}
}

// SetupWithManager registers the reconciler. Tombstones are reconciled when created or deleted (their own
// updates only record results); every change that can make an image unused, and any change of a Secret,
// enqueues the tombstones concerned.
func (r *TombstoneReconciler) SetupWithManager(mgr ctrl.Manager) error {
	ns := r.Namespace
	own := predicate.NewPredicateFuncs(func(o client.Object) bool { return o.GetNamespace() == ns && IsTombstone(o.GetLabels()) })
	noUpdates := predicate.Funcs{UpdateFunc: func(event.UpdateEvent) bool { return false }}
	all := handler.EnqueueRequestsFromMapFunc(r.allTombstones)
	return ctrl.NewControllerManagedBy(mgr).
		Named("registry-gc-tombstone").
		For(&corev1.ConfigMap{}, builder.WithPredicates(own, noUpdates)).
		Watches(&corev1.Node{}, all, builder.WithPredicates(imageRefChanged(func(o client.Object) []string {
			a := o.GetAnnotations()
			return []string{a[wellknown.CurrentImageAnnotation], a[wellknown.DesiredImageAnnotation]}
		}))).
		Watches(&mcfgv1.MachineOSConfig{}, all, builder.WithPredicates(imageRefChanged(func(o client.Object) []string {
			return []string{string(o.(*mcfgv1.MachineOSConfig).Status.CurrentImagePullSpec)}
		}))).
		Watches(&mcfgv1.MachineOSBuild{}, all, builder.WithPredicates(imageRefChanged(func(o client.Object) []string {
			b := o.(*mcfgv1.MachineOSBuild)
			// A build that finishes no longer protects the image it was building again (registry.Inventory.ImageBuild).
			return []string{string(b.Status.DigestedImagePushSpec), fmt.Sprint(!b.DeletionTimestamp.IsZero()), fmt.Sprint(osbuild.StateOf(b).IsTerminal())}
		}))).
		Watches(&mcfgv1.MachineConfig{}, all, builder.WithPredicates(imageRefChanged(func(o client.Object) []string {
			return []string{o.(*mcfgv1.MachineConfig).Spec.OSImageURL}
		}))).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.secretTombstones), builder.OnlyMetadata,
			builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool { return o.GetNamespace() == ns }))).
		Complete(r)
}

// imageRefChanged passes creations, deletions and the updates that change what refs returns.
func imageRefChanged(refs func(client.Object) []string) predicate.Funcs {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		a, b := refs(e.ObjectOld), refs(e.ObjectNew)
		for i := range a {
			if a[i] != b[i] {
				return true
			}
		}
		return false
	}}
}

func (r *TombstoneReconciler) tombstones(ctx context.Context) []corev1.ConfigMap {
	var cms corev1.ConfigMapList
	if err := r.Client.List(ctx, &cms, client.InNamespace(r.Namespace), client.MatchingLabels{TombstoneLabel: ""}); err != nil {
		log.FromContext(ctx).Error(err, "listing tombstones")
		return nil
	}
	return cms.Items
}

func (r *TombstoneReconciler) allTombstones(ctx context.Context, _ client.Object) []reconcile.Request {
	var out []reconcile.Request
	for _, cm := range r.tombstones(ctx) {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: cm.Namespace, Name: cm.Name}})
	}
	return out
}

// secretTombstones enqueues the tombstones using a changed Secret, forgetting their back-off: fixed
// credentials are tried at once.
func (r *TombstoneReconciler) secretTombstones(ctx context.Context, s client.Object) []reconcile.Request {
	var out []reconcile.Request
	for _, cm := range r.tombstones(ctx) {
		if cm.Data[KeyPushSecret] == s.GetName() {
			r.backoff.forget(cm.Name)
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: cm.Namespace, Name: cm.Name}})
		}
	}
	return out
}
