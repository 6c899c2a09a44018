package gc

import (
	"context"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/imagemode/imagemode/machineos/osbuild"
)

// BuildReconciler owns the FinalizerName finalizer of MachineOSBuilds: it adds it to builds with a pushed
// image and, when such a build is deleted, deletes the image (or records a tombstone), deletes the digest
// ConfigMap and removes the finalizer. It never keeps a build from going away.
type BuildReconciler struct {
	Client  client.Client
	Cleaner *Cleaner
	*reporter
}

// Reconcile handles one MachineOSBuild.
func (r *BuildReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	mosb := &mcfgv1.MachineOSBuild{}
	if err := r.Client.Get(ctx, req.NamespacedName, mosb); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if mosb.DeletionTimestamp.IsZero() {
		if mosb.Status.DigestedImagePushSpec == "" || controllerutil.ContainsFinalizer(mosb, FinalizerName) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, setFinalizer(ctx, r.Client, mosb, true)
	}
	if !controllerutil.ContainsFinalizer(mosb, FinalizerName) {
		return ctrl.Result{}, nil
	}
	t := TargetOfBuild(mosb)
	if t.Image != "" {
		inv, err := LoadInventory(ctx, r.Client)
		if err != nil {
			return ctrl.Result{}, err
		}
		inv.ExcludeBuild = mosb.Name
		res := r.Cleaner.Clean(ctx, t, inv)
		log.FromContext(ctx).Info("cleaning image of deleted build", "image", t.Image, "deleted", res.Deleted,
			"gone", res.Gone, "inUseBy", len(res.InUseBy), "error", res.Err)
		if res.Done() {
			// A tombstone of the same image (another build with the same digest) is settled too.
			if err := r.deleteConfigMap(ctx, TombstoneName(t.Image)); err != nil {
				return ctrl.Result{}, err
			}
		} else if err := r.saveTombstone(ctx, t, res); err != nil {
			return ctrl.Result{}, err
		}
		if err := r.report(ctx, t, res, mosb); err != nil {
			return ctrl.Result{}, err
		}
	}
	if err := r.deleteConfigMap(ctx, osbuild.DigestCMName(mosb.Name)); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, setFinalizer(ctx, r.Client, mosb, false)
}

// SetupWithManager registers the reconciler.
func (r *BuildReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("registry-gc-machineosbuild").
		For(&mcfgv1.MachineOSBuild{}).
		Complete(r)
}
