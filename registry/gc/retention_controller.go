package gc

import (
	"context"
	"fmt"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/registry"
)

// RetentionReconciler deletes, per MachineOSConfig, the finished builds beyond the current one and the
// newest Keep successful ones (registry.SelectForRetention); BuildReconciler then deletes their images.
type RetentionReconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	// Keep is the default number of successful builds kept besides the current one.
	Keep int
}

// RetentionDeletions returns the builds of mosc that retention deletes now: those SelectForRetention
// selects, except builds with a pushed image that do not carry FinalizerName yet (deleting them before
// the finalizer is on would leak the image; they are taken on the next pass).
func RetentionDeletions(builds []*mcfgv1.MachineOSBuild, mosc *mcfgv1.MachineOSConfig, keep int) ([]*mcfgv1.MachineOSBuild, error) {
	_, names, err := registry.SelectForRetention(builds, mosc, keep)
	if err != nil {
		return nil, err
	}
	byName := map[string]*mcfgv1.MachineOSBuild{}
	for _, b := range builds {
		byName[b.Name] = b
	}
	var out []*mcfgv1.MachineOSBuild
	for _, n := range names {
		b := byName[n]
		if b.Status.DigestedImagePushSpec != "" && !controllerutil.ContainsFinalizer(b, FinalizerName) {
			continue
		}
		out = append(out, b)
	}
	return out, nil
}

// Reconcile applies retention to one MachineOSConfig.
func (r *RetentionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	mosc := &mcfgv1.MachineOSConfig{}
	if err := r.Client.Get(ctx, req.NamespacedName, mosc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !mosc.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	var list mcfgv1.MachineOSBuildList
	if err := r.Client.List(ctx, &list); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing machineosbuilds: %w", err)
	}
	builds := make([]*mcfgv1.MachineOSBuild, len(list.Items))
	for i := range list.Items {
		builds[i] = &list.Items[i]
	}
	del, err := RetentionDeletions(builds, mosc, r.Keep)
	if err != nil {
		r.Recorder.Eventf(mosc, nil, corev1.EventTypeWarning, EventRetentionInvalid, "Retention", "%v", err)
		return ctrl.Result{}, nil // the user fixes the annotation, which enqueues the MachineOSConfig again
	}
	var names []string
	for _, b := range del {
		if err := deleteBuild(ctx, r.Client, b); err != nil {
			return ctrl.Result{}, fmt.Errorf("applying the retention of machineosconfig %s: %w", mosc.Name, err)
		}
		names = append(names, b.Name)
	}
	if len(names) > 0 {
		keep, _ := registry.RetainBuilds(mosc, r.Keep)
		log.FromContext(ctx).Info("deleted builds beyond retention", "machineosconfig", mosc.Name, "builds", names)
		r.Recorder.Eventf(mosc, nil, corev1.EventTypeNormal, EventBuildsPruned, "Retention",
			"Deleted %d builds beyond the current one and the newest %d successful ones: %s (their images follow)",
			len(names), keep, strings.Join(names, ", "))
	}
	return ctrl.Result{}, nil
}

// SetupWithManager registers the reconciler: a MachineOSConfig is reconciled when it or one of its builds
// changes.
func (r *RetentionReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("registry-gc-retention").
		For(&mcfgv1.MachineOSConfig{}).
		Watches(&mcfgv1.MachineOSBuild{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			b := o.(*mcfgv1.MachineOSBuild)
			name := b.Spec.MachineOSConfig.Name
			if name == "" {
				name = b.Labels[wellknown.MachineOSConfigLabel]
			}
			if name == "" {
				return nil
			}
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: name}}}
		})).
		Complete(r)
}
