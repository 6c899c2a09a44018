package machineos

import (
	"context"
	"fmt"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos/osbuild"
	"github.com/imagemode/imagemode/render/poolstatus"
)

// ConfigReconciler turns MachineOSConfigs into MachineOSBuilds and publishes the built image.
type ConfigReconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	Clock    clock.PassiveClock
	// Namespace holds the builds' digest ConfigMaps.
	Namespace string
	// Images, when set, is asked whether an image still exists before it is reused or adopted again.
	Images ImageChecker
	// Bases, when set, resolves base images given by tag to digests: a tag that moves gives a new build.
	Bases BaseImageResolver
	// BaseImageRecheck is how often such a tag is resolved again (DefaultBaseImageRecheck when 0), and
	// BaseImageTimeout bounds one resolution (DefaultBaseImageTimeout when 0).
	BaseImageRecheck, BaseImageTimeout time.Duration

	bases *baseImages
}

// Reconcile observes a MachineOSConfig and its pool and builds, decides with Decide, and acts.
func (r *ConfigReconciler) Reconcile(ctx context.Context, req reconcile.Request) (ctrl.Result, error) {
	mosc := &mcfgv1.MachineOSConfig{}
	if err := r.Client.Get(ctx, req.NamespacedName, mosc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if mosc.DeletionTimestamp != nil {
		r.bases.forget(mosc.Name)
		return ctrl.Result{}, nil // its builds are owned by it and collected with it
	}
	in, err := r.observe(ctx, mosc)
	if err != nil {
		return ctrl.Result{}, err
	}
	failedNow, recheck := r.bases.resolve(ctx, &in, rebuildRequested(mosc))
	r.reportBaseImage(mosc, in, failedNow)
	d := Decide(in)
	if missing, err := r.imageGone(ctx, in, d); err != nil {
		return ctrl.Result{}, err
	} else if missing != "" {
		in.MissingImages = map[string]bool{missing: true}
		r.Recorder.Eventf(mosc, nil, corev1.EventTypeWarning, ReasonImageMissing, "Build", "The image of %s is gone from the registry; it will be built again", missing)
		d = Decide(in)
	}
	if d.Ready.Reason == ReasonConflict {
		if c := apimeta.FindStatusCondition(mosc.Status.Conditions, ConditionReady); c == nil || c.Reason != ReasonConflict {
			r.Recorder.Eventf(mosc, nil, corev1.EventTypeWarning, ReasonConflict, "Build", "%s; this one builds nothing", d.Ready.Message)
		}
	}
	if err := r.act(ctx, in, d); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.report(ctx, mosc, in.Pool, d); err != nil {
		return ctrl.Result{}, err
	}
	// A base image given by tag is looked at again later: the tag may move.
	return ctrl.Result{RequeueAfter: recheck}, nil
}

func (r *ConfigReconciler) observe(ctx context.Context, mosc *mcfgv1.MachineOSConfig) (ConfigInputs, error) {
	in := ConfigInputs{MOSC: mosc}
	var moscs mcfgv1.MachineOSConfigList
	if err := r.Client.List(ctx, &moscs); err != nil {
		return in, fmt.Errorf("listing machineosconfigs: %w", err)
	}
	for i := range moscs.Items {
		in.Others = append(in.Others, &moscs.Items[i])
	}
	pool := &mcfgv1.MachineConfigPool{}
	if ok, err := getOptional(ctx, r.Client, mosc.Spec.MachineConfigPool.Name, pool); err != nil {
		return in, err
	} else if ok {
		in.Pool = pool
		rendered := &mcfgv1.MachineConfig{}
		if ok, err := getOptional(ctx, r.Client, pool.Spec.Configuration.Name, rendered); err != nil {
			return in, err
		} else if ok {
			in.Rendered = rendered
		}
	}
	var builds mcfgv1.MachineOSBuildList
	if err := r.Client.List(ctx, &builds, client.MatchingLabels{wellknown.MachineOSConfigLabel: mosc.Name}); err != nil {
		return in, fmt.Errorf("listing machineosbuilds of %s: %w", mosc.Name, err)
	}
	for i := range builds.Items {
		b := &builds.Items[i]
		if !metav1.IsControlledBy(b, mosc) {
			continue
		}
		in.Builds = append(in.Builds, b)
		if b.Name == osbuild.CurrentName(mosc) {
			rendered := &mcfgv1.MachineConfig{}
			if ok, err := getOptional(ctx, r.Client, b.Spec.MachineConfig.Name, rendered); err != nil {
				return in, err
			} else if ok {
				in.CurrentRendered = rendered
			}
		}
	}
	return in, nil
}

// imageGone checks the image a decision is about to hand out anew — a reused image, or an earlier build
// adopted again (a reverted change) — and returns the name of the build whose image is gone, if so.
func (r *ConfigReconciler) imageGone(ctx context.Context, in ConfigInputs, d Decision) (string, error) {
	if r.Images == nil || d.Image == "" {
		return "", nil
	}
	build := d.CurrentBuild
	switch {
	case d.Action == ActionReuse:
		build = d.ReuseFrom.Name
	case d.CurrentBuild == osbuild.CurrentName(in.MOSC) && d.Image == string(in.MOSC.Status.CurrentImagePullSpec):
		return "", nil // already the current image: nothing new to check
	}
	ok, err := r.Images.ImageExists(ctx, in.MOSC, d.Image)
	if err != nil {
		return "", fmt.Errorf("checking image %s of %s: %w", d.Image, build, err)
	}
	if ok {
		return "", nil
	}
	return build, nil
}

func (r *ConfigReconciler) act(ctx context.Context, in ConfigInputs, d Decision) error {
	mosc := in.MOSC
	switch d.Action {
	case ActionDelete:
		if err := r.deleteBuild(ctx, d.Build); err != nil {
			return err
		}
		r.Recorder.Eventf(mosc, nil, corev1.EventTypeNormal, EventRebuildRequested, "Rebuild", "Rebuilding %s", d.Build)
	case ActionCreate, ActionReuse:
		mosb, err := r.newBuild(in, d.Build)
		if err != nil {
			return err
		}
		if d.BaseImage != "" {
			mosb.Annotations[BaseImageAnnotation] = d.BaseImage
		}
		if d.Action == ActionReuse {
			mosb.Annotations[ReusedFromAnnotation] = d.ReuseFrom.Name
		}
		if err := r.Client.Create(ctx, mosb); apierrors.IsAlreadyExists(err) {
			if err := r.Client.Get(ctx, client.ObjectKeyFromObject(mosb), mosb); err != nil {
				return fmt.Errorf("reading machineosbuild %s: %w", mosb.Name, err)
			}
		} else if err != nil {
			return fmt.Errorf("creating machineosbuild %s: %w", mosb.Name, err)
		}
		if d.Action == ActionReuse && osbuild.StateOf(mosb) == osbuild.StateInitial {
			before := mosb.DeepCopy()
			now := metav1.NewTime(r.Clock.Now())
			mosb.Status.Conditions = osbuild.Conditions(osbuild.StateSucceeded, nil, now)
			mosb.Status.DigestedImagePushSpec = d.ReuseFrom.Status.DigestedImagePushSpec
			start, end := osbuild.BuildTimes(mosb.CreationTimestamp, now)
			mosb.Status.BuildStart, mosb.Status.BuildEnd = &start, &end
			if err := r.Client.Status().Patch(ctx, mosb, client.MergeFrom(before)); err != nil {
				return fmt.Errorf("recording the reused image on machineosbuild %s: %w", mosb.Name, err)
			}
			r.Recorder.Eventf(mosc, nil, corev1.EventTypeNormal, EventImageReused, "Build",
				"No build needed for %s: only files or units changed; reusing %s", in.Rendered.Name, mosb.Status.DigestedImagePushSpec)
		}
	}
	for _, name := range d.DeleteStale {
		if err := r.deleteBuild(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// newBuild returns the MachineOSBuild of name for the pool's current config, as the reference makes it:
// labels, push-secret annotation, the MachineOSConfig as controller, deleted in the foreground (its Job
// goes first).
func (r *ConfigReconciler) newBuild(in ConfigInputs, name string) (*mcfgv1.MachineOSBuild, error) {
	push, err := BuildPushSpec(string(in.MOSC.Spec.RenderedImagePushSpec), name)
	if err != nil {
		return nil, err
	}
	mosb := &mcfgv1.MachineOSBuild{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				wellknown.TargetMachineConfigPoolLabel: in.Pool.Name,
				wellknown.RenderedMachineConfigLabel:   in.Rendered.Name,
				wellknown.MachineOSConfigLabel:         in.MOSC.Name,
			},
			Annotations: map[string]string{
				wellknown.RenderedImagePushSecretAnnotation: in.MOSC.Spec.RenderedImagePushSecret.Name,
				SpecHashAnnotation:                          SpecHash(in.MOSC.Spec),
			},
			Finalizers: []string{metav1.FinalizerDeleteDependents},
		},
		Spec: mcfgv1.MachineOSBuildSpec{
			MachineConfig:         mcfgv1.MachineConfigReference{Name: in.Rendered.Name},
			MachineOSConfig:       mcfgv1.MachineOSConfigReference{Name: in.MOSC.Name},
			RenderedImagePushSpec: mcfgv1.ImageTagFormat(push),
		},
	}
	if key := in.MOSC.Annotations[SigningKeySecretAnnotation]; key != "" {
		mosb.Annotations[SigningKeySecretAnnotation] = key
	}
	if err := controllerutil.SetControllerReference(in.MOSC, mosb, r.Client.Scheme()); err != nil {
		return nil, err
	}
	return mosb, nil
}

// deleteBuild deletes a build and its digest ConfigMap.
func (r *ConfigReconciler) deleteBuild(ctx context.Context, name string) error {
	mosb := &mcfgv1.MachineOSBuild{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := r.Client.Delete(ctx, mosb); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting machineosbuild %s: %w", name, err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: r.Namespace, Name: osbuild.DigestCMName(name)}}
	if err := r.Client.Delete(ctx, cm); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting configmap %s: %w", cm.Name, err)
	}
	log.FromContext(ctx).Info("deleted build", "machineosbuild", name)
	return nil
}

// report writes the MachineOSConfig's annotations and status and the pool's ImageBuildDegraded condition,
// each only when it changes.
func (r *ConfigReconciler) report(ctx context.Context, mosc *mcfgv1.MachineOSConfig, pool *mcfgv1.MachineConfigPool, d Decision) error {
	before := mosc.DeepCopy()
	if d.CurrentBuild != "" {
		metav1.SetMetaDataAnnotation(&mosc.ObjectMeta, wellknown.CurrentMachineOSBuildAnnotation, d.CurrentBuild)
	}
	if d.RemoveRebuildAnnotation {
		delete(mosc.Annotations, wellknown.RebuildAnnotation)
	}
	if !equality.Semantic.DeepEqual(before.Annotations, mosc.Annotations) {
		if err := r.Client.Patch(ctx, mosc, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			return fmt.Errorf("annotating machineosconfig %s: %w", mosc.Name, err)
		}
	}
	statusBefore := mosc.DeepCopy()
	cond := d.Ready
	cond.ObservedGeneration = mosc.Generation
	apimeta.SetStatusCondition(&mosc.Status.Conditions, cond)
	if d.BaseImageCondition.Type != "" {
		bc := d.BaseImageCondition
		bc.ObservedGeneration = mosc.Generation
		apimeta.SetStatusCondition(&mosc.Status.Conditions, bc)
	}
	if d.Image != "" {
		mosc.Status.CurrentImagePullSpec = mcfgv1.ImageDigestFormat(d.Image)
		mosc.Status.MachineOSBuild = &mcfgv1.ObjectReference{Group: wellknown.Group, Resource: "machineosbuilds", Name: d.CurrentBuild}
	}
	mosc.Status.ObservedGeneration = mosc.Generation
	if !equality.Semantic.DeepEqual(statusBefore.Status, mosc.Status) {
		if err := r.Client.Status().Patch(ctx, mosc, client.MergeFromWithOptions(statusBefore, client.MergeFromWithOptimisticLock{})); err != nil {
			return fmt.Errorf("writing status of machineosconfig %s: %w", mosc.Name, err)
		}
	}
	if pool == nil || d.PoolCondition == nil {
		return nil
	}
	poolBefore := pool.DeepCopy()
	if poolstatus.SetCondition(&pool.Status, *d.PoolCondition, metav1.NewTime(r.Clock.Now())) {
		if err := r.Client.Status().Patch(ctx, pool, client.MergeFromWithOptions(poolBefore, client.MergeFromWithOptimisticLock{})); err != nil {
			return fmt.Errorf("writing ImageBuildDegraded of pool %s: %w", pool.Name, err)
		}
	}
	return nil
}

// SetupWithManager watches MachineOSConfigs, the builds they own, and pools (a pool event concerns the
// MachineOSConfigs that target it).
func (r *ConfigReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	r.bases = &baseImages{resolver: r.Bases, recheck: r.BaseImageRecheck, timeout: r.BaseImageTimeout, now: r.Clock.Now}
	if r.bases.recheck <= 0 {
		r.bases.recheck = DefaultBaseImageRecheck
	}
	if r.bases.timeout <= 0 {
		r.bases.timeout = DefaultBaseImageTimeout
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("machineosconfig").
		// A slow registry (base image resolution, image checks) holds one MachineOSConfig, not all of them.
		WithOptions(controller.Options{MaxConcurrentReconciles: 3}).
		For(&mcfgv1.MachineOSConfig{}).
		Owns(&mcfgv1.MachineOSBuild{}).
		Watches(&mcfgv1.MachineConfigPool{}, handler.EnqueueRequestsFromMapFunc(r.configsForPool)).
		Complete(r)
}

func (r *ConfigReconciler) configsForPool(ctx context.Context, obj client.Object) []reconcile.Request {
	var moscs mcfgv1.MachineOSConfigList
	if err := r.Client.List(ctx, &moscs); err != nil {
		log.FromContext(ctx).Error(err, "listing machineosconfigs for a pool event")
		return nil
	}
	var out []reconcile.Request
	for _, m := range moscs.Items {
		if m.Spec.MachineConfigPool.Name == obj.GetName() {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: m.Name}})
		}
	}
	return out
}
