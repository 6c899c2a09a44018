package containerruntime

import (
	"context"
	"errors"
	"fmt"
	"strings"

	configv1 "github.com/openshift/api/config/v1"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	operatorv1alpha1 "github.com/openshift/api/operator/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/render/registries"
)

// ReasonInvalidRegistryConfig is the reason of the Warning event recorded on an object whose registry
// configuration does not validate.
const ReasonInvalidRegistryConfig = "InvalidRegistryConfiguration"

// actionGenerate is the action of this controller's events.
const actionGenerate = "GenerateRegistriesConfig"

// Resources as registries.Validate names the objects in its errors (see Offenders).
const (
	resourceICSP  = "imagecontentsourcepolicies"
	resourceIDMS  = "imagedigestmirrorsets"
	resourceITMS  = "imagetagmirrorsets"
	resourceImage = "images"
)

// Reconciler keeps 99-<pool>-generated-registries of every built-in pool (see Desired).
//
// The generated configs carry no ownerReference. They are a function of cluster-wide objects, not of the
// pool, which only names the role; a controller reference to the pool would make them look like the pool's
// rendered configs (which the render controller, pruning and tools recognise by that reference), and garbage
// collection with the pool would take the config away from the custom pools that still inherit it through
// the worker role. The reconciler deletes a generated config itself when it is no longer needed, and watches
// the generated configs by name to undo edits and deletions by others.
//
// Only pools carrying the mco-built-in label are served; a pool that loses the label, or is deleted, keeps
// its generated config as it is.
type Reconciler struct {
	// Client reads the inputs and writes the generated configs (the manager's cached client).
	Client client.Client
	// Recorder records the Warning events about invalid inputs.
	Recorder events.EventRecorder
	// Version is written to the generated-by-controller-version annotation of the generated configs.
	Version string
}

// scope is what one pass observed.
type scope struct {
	pool *mcfgv1.MachineConfigPool
	in   registries.Inputs
	// objects are the input objects by "<resource>/<name>", to record events on.
	objects map[string]client.Object
	// existing is the generated config as it is, nil when absent.
	existing *mcfgv1.MachineConfig
}

// Reconcile brings one built-in pool's generated registries config up to date: observe, decide (Desired), act.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (ctrl.Result, error) {
	pool := &mcfgv1.MachineConfigPool{}
	if err := r.Client.Get(ctx, req.NamespacedName, pool); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if pool.DeletionTimestamp != nil || !IsBuiltInPool(pool) {
		return ctrl.Result{}, nil
	}
	s, err := r.observe(ctx, pool)
	if err != nil {
		return ctrl.Result{}, err
	}
	desired, err := Desired(pool.Name, s.in, r.Version)
	var invalid *InvalidInputsError
	switch {
	case errors.As(err, &invalid):
		r.reportInvalid(s, invalid)
		// Logged by controller-runtime. Retrying cannot help until an input changes, and that triggers a pass.
		return ctrl.Result{}, reconcile.TerminalError(err)
	case err != nil:
		return ctrl.Result{}, err
	case desired == nil:
		return ctrl.Result{}, r.deleteGenerated(ctx, s)
	default:
		return ctrl.Result{}, r.apply(ctx, s, desired)
	}
}

// observe loads the registry inputs and the pool's generated config.
func (r *Reconciler) observe(ctx context.Context, pool *mcfgv1.MachineConfigPool) (*scope, error) {
	s := &scope{pool: pool, objects: map[string]client.Object{}}
	var icsps operatorv1alpha1.ImageContentSourcePolicyList
	if err := r.Client.List(ctx, &icsps); err != nil {
		return nil, fmt.Errorf("listing ImageContentSourcePolicies: %w", err)
	}
	for i := range icsps.Items {
		s.objects[resourceICSP+"/"+icsps.Items[i].Name] = &icsps.Items[i]
	}
	s.in.ICSPs = icsps.Items
	var idmss configv1.ImageDigestMirrorSetList
	if err := r.Client.List(ctx, &idmss); err != nil {
		return nil, fmt.Errorf("listing ImageDigestMirrorSets: %w", err)
	}
	for i := range idmss.Items {
		s.objects[resourceIDMS+"/"+idmss.Items[i].Name] = &idmss.Items[i]
	}
	s.in.IDMSs = idmss.Items
	var itmss configv1.ImageTagMirrorSetList
	if err := r.Client.List(ctx, &itmss); err != nil {
		return nil, fmt.Errorf("listing ImageTagMirrorSets: %w", err)
	}
	for i := range itmss.Items {
		s.objects[resourceITMS+"/"+itmss.Items[i].Name] = &itmss.Items[i]
	}
	s.in.ITMSs = itmss.Items

	img := &configv1.Image{}
	switch err := r.Client.Get(ctx, types.NamespacedName{Name: ImageConfigName}, img); {
	case err == nil:
		s.in.Image = img
		s.objects[resourceImage+"/"+img.Name] = img
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("reading images.config.openshift.io/%s: %w", ImageConfigName, err)
	}
	cc := &mcfgv1.ControllerConfig{}
	switch err := r.Client.Get(ctx, types.NamespacedName{Name: wellknown.ControllerConfigName}, cc); {
	case err == nil:
		s.in.ReleaseImage = releasePullSpec(cc)
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("reading ControllerConfig %s: %w", wellknown.ControllerConfigName, err)
	}

	existing := &mcfgv1.MachineConfig{}
	switch err := r.Client.Get(ctx, types.NamespacedName{Name: GeneratedName(pool.Name)}, existing); {
	case err == nil:
		s.existing = existing
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("reading MachineConfig %s: %w", GeneratedName(pool.Name), err)
	}
	return s, nil
}

// releasePullSpec returns the release payload pull spec of the ControllerConfig, against which blocking is
// checked (registries.Inputs.ReleaseImage). On OpenShift spec.releaseImage is that pull spec; clusters
// without OpenShift's operator may hold a bare release version there (renderer.NewControllerConfig), which is
// no image and is ignored: only a value with a repository path ("/") is taken.
func releasePullSpec(cc *mcfgv1.ControllerConfig) string {
	if strings.Contains(cc.Spec.ReleaseImage, "/") {
		return cc.Spec.ReleaseImage
	}
	return ""
}

// apply creates the generated config, or updates it when it differs from desired in what this controller
// owns (spec, role label, generated-by-controller-version annotation), keeping others' labels and
// annotations. A config of that name without the annotation is taken over: the name is this controller's.
func (r *Reconciler) apply(ctx context.Context, s *scope, desired *mcfgv1.MachineConfig) error {
	logger := log.FromContext(ctx)
	if s.existing == nil {
		if err := r.Client.Create(ctx, desired); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return nil // the cache lags; the config's own event brings us back to compare
			}
			return fmt.Errorf("creating MachineConfig %s: %w", desired.Name, err)
		}
		logger.Info("created generated registries config", "pool", s.pool.Name, "machineConfig", desired.Name)
		return nil
	}
	if !needsUpdate(s.existing, desired) {
		return nil
	}
	mc := s.existing.DeepCopy()
	mc.Spec = desired.Spec
	if mc.Labels == nil {
		mc.Labels = map[string]string{}
	}
	for k, v := range desired.Labels {
		mc.Labels[k] = v
	}
	if mc.Annotations == nil {
		mc.Annotations = map[string]string{}
	}
	for k, v := range desired.Annotations {
		mc.Annotations[k] = v
	}
	if err := r.Client.Update(ctx, mc); err != nil {
		return fmt.Errorf("updating MachineConfig %s: %w", mc.Name, err)
	}
	logger.Info("updated generated registries config", "pool", s.pool.Name, "machineConfig", mc.Name)
	return nil
}

// deleteGenerated deletes the pool's generated config when there is nothing to configure, if it is one this
// controller wrote (it carries the generated-by-controller-version annotation); a user's config of that name
// is left alone.
func (r *Reconciler) deleteGenerated(ctx context.Context, s *scope) error {
	if s.existing == nil {
		return nil
	}
	if _, ours := s.existing.Annotations[wellknown.GeneratedByControllerVersionAnnotation]; !ours {
		return nil
	}
	uid, rv := s.existing.UID, s.existing.ResourceVersion
	switch err := r.Client.Delete(ctx, s.existing, client.Preconditions{UID: &uid, ResourceVersion: &rv}); {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("deleting MachineConfig %s: %w", s.existing.Name, err)
	}
	log.FromContext(ctx).Info("deleted generated registries config: nothing to configure", "pool", s.pool.Name,
		"machineConfig", s.existing.Name)
	return nil
}

// reportInvalid records a Warning event on each object the validation errors blame (on the pool for errors
// that name no object), related to the pool whose config is kept.
func (r *Reconciler) reportInvalid(s *scope, invalid *InvalidInputsError) {
	for _, o := range Offenders(invalid.Errs) {
		var regarding client.Object = s.pool
		if obj, ok := s.objects[o.Resource+"/"+o.Name]; ok {
			regarding = obj
		}
		note := fmt.Sprintf("not changing %s, nodes keep their current registries configuration: %v",
			GeneratedName(s.pool.Name), o.Errs.ToAggregate())
		r.Recorder.Eventf(regarding, s.pool, corev1.EventTypeWarning, ReasonInvalidRegistryConfig, actionGenerate,
			"%s", truncateNote(note))
	}
}

// SetupWithManager registers the controller, keyed by built-in pool: pool events, the registry inputs (all
// ImageContentSourcePolicies, ImageDigestMirrorSets, ImageTagMirrorSets, images.config.openshift.io/cluster
// and the ControllerConfig) mapped to every built-in pool, and the generated configs mapped to their pool.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	toAll := handler.EnqueueRequestsFromMapFunc(r.builtInPools)
	return ctrl.NewControllerManagedBy(mgr).
		Named("container-runtime-config").
		For(&mcfgv1.MachineConfigPool{}, builder.WithPredicates(builtInPoolChanged())).
		Watches(&operatorv1alpha1.ImageContentSourcePolicy{}, toAll).
		Watches(&configv1.ImageDigestMirrorSet{}, toAll).
		Watches(&configv1.ImageTagMirrorSet{}, toAll).
		Watches(&configv1.Image{}, toAll, builder.WithPredicates(isImageConfig())).
		Watches(&mcfgv1.ControllerConfig{}, toAll, builder.WithPredicates(isControllerConfig())).
		Watches(&mcfgv1.MachineConfig{}, handler.EnqueueRequestsFromMapFunc(poolOfGeneratedConfig),
			builder.WithPredicates(isGeneratedConfig())).
		Complete(r)
}

// builtInPools maps any input event to every built-in pool.
func (r *Reconciler) builtInPools(ctx context.Context, _ client.Object) []reconcile.Request {
	var pools mcfgv1.MachineConfigPoolList
	if err := r.Client.List(ctx, &pools, client.HasLabels{wellknown.BuiltInPoolLabel}); err != nil {
		log.FromContext(ctx).Error(err, "listing built-in pools for a registry configuration event")
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(pools.Items))
	for _, p := range pools.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: p.Name}})
	}
	return reqs
}

// poolOfGeneratedConfig maps a generated config to its pool.
func poolOfGeneratedConfig(_ context.Context, obj client.Object) []reconcile.Request {
	pool, ok := PoolForGeneratedName(obj.GetName())
	if !ok {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: pool}}}
}
