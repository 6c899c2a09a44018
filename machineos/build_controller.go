package machineos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/imagemode/imagemode/builder/jobs"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/layering"
	"github.com/imagemode/imagemode/machineos/osbuild"
	"github.com/imagemode/imagemode/registry/signing"
)

// Event reasons of the build service (the reference's strings).
const (
	EventBuildStarted     = "BuildStarted"
	EventBuildCompleted   = "BuildCompleted"
	EventBuildFailed      = "BuildFailed"
	EventBuildInterrupted = "BuildInterrupted"
	EventJobCreated       = "JobCreated"
	EventRebuildRequested = "RebuildRequested"
	EventBuildWaiting     = "BuildWaiting"
	EventImageReused      = "ImageReused"
)

// secretWait is how long a build waits before looking again for a missing or invalid secret (secrets are
// not watched: the build service never reads secrets it does not use).
const secretWait = 15 * time.Second

// BuildReconciler runs MachineOSBuilds: it starts each build's Job and follows it to the end.
type BuildReconciler struct {
	Client client.Client
	// APIReader reads objects the build pod writes (the digest ConfigMap) without the cache's lag.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock
	Jobs      jobs.Options
	// ControllerConfigName names the ControllerConfig holding registry CAs and proxy settings.
	ControllerConfigName string
	// Metrics, when set, records build states, durations, retries and queue times.
	Metrics *Metrics
	// Signer signs the images of builds with a signing key (SigningKeySecretAnnotation).
	Signer ImageSigner

	attempts attemptLog
}

// Reconcile moves one MachineOSBuild along.
func (r *BuildReconciler) Reconcile(ctx context.Context, req reconcile.Request) (ctrl.Result, error) {
	mosb := &mcfgv1.MachineOSBuild{}
	if err := r.Client.Get(ctx, req.NamespacedName, mosb); err != nil {
		if apierrors.IsNotFound(err) {
			r.attempts.forget(req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if mosb.DeletionTimestamp != nil {
		return ctrl.Result{}, nil // the garbage collector removes the Job, its ConfigMaps and Secrets
	}
	if mosb.Annotations[ReusedFromAnnotation] != "" {
		return ctrl.Result{}, nil // no build runs: the MachineOSConfig controller records the reused image
	}
	obs, err := r.observe(ctx, mosb)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.recordAttempts(ctx, &obs); err != nil {
		return ctrl.Result{}, err
	}
	step, err := DecideBuild(obs)
	if err != nil {
		return ctrl.Result{}, err
	}
	return r.act(ctx, obs, step)
}

// observe reads what DecideBuild needs: the build's Job and, while the build runs, the digest its pod
// recorded (read past the cache, which may lag the pod's write).
func (r *BuildReconciler) observe(ctx context.Context, mosb *mcfgv1.MachineOSBuild) (BuildObservation, error) {
	obs := BuildObservation{Build: mosb, Now: r.Clock.Now()}
	job := &batchv1.Job{}
	switch err := r.Client.Get(ctx, types.NamespacedName{Namespace: r.Jobs.Namespace, Name: osbuild.JobName(mosb.Name)}, job); {
	case apierrors.IsNotFound(err):
		return obs, nil
	case err != nil:
		return obs, fmt.Errorf("reading job %s: %w", osbuild.JobName(mosb.Name), err)
	}
	obs.Job = job
	if osbuild.StateOf(mosb).IsTerminal() || !metav1.IsControlledBy(job, mosb) {
		return obs, nil
	}
	cm := &corev1.ConfigMap{}
	switch err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: r.Jobs.Namespace, Name: osbuild.DigestCMName(mosb.Name)}, cm); {
	case err != nil:
		obs.DigestProblem = err.Error()
	case cm.Data[osbuild.DigestKey] == "":
		obs.DigestProblem = "no digest recorded"
	default:
		obs.Digest = cm.Data[osbuild.DigestKey]
	}
	return obs, nil
}

// act carries out step.
func (r *BuildReconciler) act(ctx context.Context, obs BuildObservation, step BuildStep) (ctrl.Result, error) {
	mosb, job := obs.Build, obs.Job
	switch step.Action {
	case BuildNothing:
		return ctrl.Result{RequeueAfter: step.RequeueAfter}, nil
	case BuildDeleteEarlierJob:
		if job.DeletionTimestamp == nil {
			bg := metav1.DeletePropagationForeground
			if err := r.Client.Delete(ctx, job, &client.DeleteOptions{PropagationPolicy: &bg}); client.IgnoreNotFound(err) != nil {
				return ctrl.Result{}, fmt.Errorf("deleting job %s of an earlier build: %w", job.Name, err)
			}
		}
		return ctrl.Result{}, fmt.Errorf("job %s belongs to an earlier build of the same name; waiting for its deletion", job.Name)
	case BuildStart:
		return r.start(ctx, mosb)
	case BuildCleanUp:
		fg := metav1.DeletePropagationForeground
		if err := r.Client.Delete(ctx, job, &client.DeleteOptions{PropagationPolicy: &fg}); client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, fmt.Errorf("deleting job %s after success: %w", job.Name, err)
		}
		return ctrl.Result{}, nil
	}
	// Follow.
	if step.AdoptJob {
		if err := r.ensureJobObjects(ctx, mosb, job); err != nil {
			return ctrl.Result{}, err
		}
		if err := r.recordJob(ctx, mosb, job); err != nil {
			return ctrl.Result{}, err
		}
	}
	if step.Next == "" {
		return ctrl.Result{}, nil
	}
	var signed *metav1.Condition
	if step.Sign {
		cond, res, done, err := r.sign(ctx, mosb, job, step.Digested)
		if !done {
			return res, err
		}
		signed = cond
	}
	if step.EventReason != "" {
		r.Recorder.Eventf(mosb, nil, step.EventType, step.EventReason, "Build", "%s", step.EventMessage)
	}
	if job == nil {
		return ctrl.Result{}, r.setState(ctx, mosb, step.Next, nil)
	}
	return ctrl.Result{}, r.setStateWithJob(ctx, mosb, step.Next, job, func(s *mcfgv1.MachineOSBuildStatus) {
		if step.Digested != "" {
			s.DigestedImagePushSpec = mcfgv1.ImageDigestFormat(step.Digested)
		}
		if signed != nil {
			apimeta.SetStatusCondition(&s.Conditions, *signed)
		}
		if step.FailedCause != "" {
			for i := range s.Conditions {
				if s.Conditions[i].Type == string(mcfgv1.MachineOSBuildFailed) && s.Conditions[i].Status == metav1.ConditionTrue {
					s.Conditions[i].Message += ": " + step.FailedCause
				}
			}
		}
		if s.BuildStart == nil {
			start := job.CreationTimestamp
			s.BuildStart = &start
		}
		s.Builder = &mcfgv1.MachineOSBuilderReference{ImageBuilderType: mcfgv1.JobBuilder,
			Job: &mcfgv1.ObjectReference{Group: "batch", Resource: "jobs", Namespace: job.Namespace, Name: job.Name}}
	})
}

// preparation is what preparing a build found: its objects, or why it cannot start now.
type preparation struct {
	objs *jobs.Objects
	// gone: the build's inputs (config, pool, rendered config) are gone; stale: the pool moved on to
	// another rendered config before the build started (the MachineOSConfig controller replaces it).
	gone, stale bool
	// invalid is input no retry can fix (a Containerfile that does not parse, a config that cannot be
	// layered): the build fails.
	invalid error
	// wait says why the build waits (a missing or invalid secret the user can fix).
	wait string
	// signingKey says why the build's signing key cannot be used: the build fails.
	signingKey *signing.KeyError
}

// prepare composes the build once — the layered Containerfile and its build context, archived for the
// build pod, which composes nothing — reads the secrets and the entitlement objects, and returns the Job,
// ConfigMaps and Secrets to create. Starting a build and completing one interrupted between creating its
// Job and its other objects (started: its Job exists, so a pool that moved on does not stop it) both go
// through it.
func (r *BuildReconciler) prepare(ctx context.Context, mosb *mcfgv1.MachineOSBuild, started bool) (preparation, error) {
	in, err := r.loadBuildInputs(ctx, mosb)
	if err != nil {
		return preparation{}, err
	}
	if in == nil {
		return preparation{gone: true}, nil
	}
	if !started && in.pool.Spec.Configuration.Name != mosb.Spec.MachineConfig.Name {
		return preparation{stale: true}, nil
	}
	bc, err := layering.Compose(layering.Inputs{Rendered: in.rendered, MachineOSConfig: in.mosc, MachineOSBuild: mosb,
		BaseImage: mosb.Annotations[BaseImageAnnotation]})
	if err != nil {
		return preparation{invalid: err}, nil
	}
	archive, err := bc.Archive()
	if err != nil {
		return preparation{invalid: fmt.Errorf("archiving the build context: %w", err)}, nil
	}
	req := &jobs.Request{MachineOSConfig: in.mosc, MachineOSBuild: mosb, Pool: in.pool, Rendered: in.rendered,
		Containerfile: bc.Containerfile, Context: archive, RegistryCAs: in.registryCAs}
	if req.RunMounts, err = r.runMounts(ctx, in.pool.Name); err != nil {
		return preparation{}, err
	}
	var wait string
	if req.BasePullSecret, wait, err = r.secret(ctx, basePullSecretName(in.mosc)); err != nil || wait != "" {
		return preparation{wait: wait}, err
	}
	if req.PushSecret, wait, err = r.secret(ctx, in.mosc.Spec.RenderedImagePushSecret.Name); err != nil || wait != "" {
		return preparation{wait: wait}, err
	}
	if signingSecret(mosb) != "" {
		// The key is checked before the build runs (and read again to sign): it never goes into the Job.
		if _, err := r.signingKey(ctx, mosb); err != nil {
			if keyErr, ok := signing.IsKeyError(err); ok {
				return preparation{signingKey: keyErr}, nil
			}
			return preparation{}, err
		}
	}
	objs, err := jobs.Build(req, r.Jobs)
	if err != nil {
		return preparation{wait: err.Error()}, nil // an invalid secret: the user can fix its content
	}
	return preparation{objs: objs}, nil
}

// start prepares and starts a build: the Job, then its ConfigMaps and Secrets, and the build is Prepared.
func (r *BuildReconciler) start(ctx context.Context, mosb *mcfgv1.MachineOSBuild) (ctrl.Result, error) {
	p, err := r.prepare(ctx, mosb, false)
	switch {
	case err != nil:
		return ctrl.Result{}, err
	case p.gone, p.stale:
		return ctrl.Result{}, nil
	case p.invalid != nil:
		// Retrying cannot help: the build fails at once.
		r.Recorder.Eventf(mosb, nil, corev1.EventTypeWarning, EventBuildFailed, "Build", "%v", p.invalid)
		return ctrl.Result{}, r.setState(ctx, mosb, osbuild.StateFailed, func(s *mcfgv1.MachineOSBuildStatus) {
			s.BuildStart = ptrTime(mosb.CreationTimestamp)
		})
	case p.signingKey != nil:
		return r.failSigning(ctx, mosb, nil, p.signingKey, "")
	case p.wait != "":
		return r.waitFor(ctx, mosb, p.wait)
	}
	objs := p.objs
	if err := controllerutil.SetControllerReference(mosb, objs.Job, r.Client.Scheme()); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.Client.Create(ctx, objs.Job); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return ctrl.Result{}, nil // the next pass (on the Job's event) completes it
		}
		return ctrl.Result{}, fmt.Errorf("creating job %s: %w", objs.Job.Name, err)
	}
	r.Recorder.Eventf(mosb, nil, corev1.EventTypeNormal, EventJobCreated, "Build", "Created job %s/%s", objs.Job.Namespace, objs.Job.Name)
	// The Job exists and has its UID: its ConfigMaps and Secrets follow, owned by it (created with their
	// owner: the build service needs no right to update them), and the build records the UID. A crash in
	// between is completed by a later pass (BuildStep.AdoptJob). The build pod waits for its volumes as a kubelet
	// does; the local pod runner starts it as soon as they appear.
	if err := r.createJobObjects(ctx, objs, objs.Job); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, r.recordJob(ctx, mosb, objs.Job)
}

// ensureJobObjects creates the build's ConfigMaps and Secrets, owned by its Job, where missing (after a
// crash between creating the Job and them). Here nothing may wait: the Job already runs.
func (r *BuildReconciler) ensureJobObjects(ctx context.Context, mosb *mcfgv1.MachineOSBuild, job *batchv1.Job) error {
	p, err := r.prepare(ctx, mosb, true)
	switch {
	case err != nil:
		return fmt.Errorf("preparing the objects of machineosbuild %s: %w", mosb.Name, err)
	case p.gone:
		return fmt.Errorf("preparing the objects of machineosbuild %s: its inputs are gone", mosb.Name)
	case p.invalid != nil:
		return fmt.Errorf("preparing the objects of machineosbuild %s: %w", mosb.Name, p.invalid)
	case p.wait != "":
		return fmt.Errorf("preparing the objects of machineosbuild %s: %s", mosb.Name, p.wait)
	case p.signingKey != nil:
		return fmt.Errorf("preparing the objects of machineosbuild %s: %w", mosb.Name, p.signingKey)
	}
	return r.createJobObjects(ctx, p.objs, job)
}

// createJobObjects creates the build's ConfigMaps and Secrets, owned by job, all at once (the build pod
// waits for them); existing ones are kept.
func (r *BuildReconciler) createJobObjects(ctx context.Context, objs *jobs.Objects, job *batchv1.Job) error {
	objs.WithJobOwner(job)
	var owned []client.Object
	for _, cm := range objs.ConfigMaps {
		owned = append(owned, cm)
	}
	for _, s := range objs.Secrets {
		owned = append(owned, s)
	}
	errs := make([]error, len(owned))
	var wg sync.WaitGroup
	for i, obj := range owned {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Client.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
				kind := "configmap"
				if _, ok := obj.(*corev1.Secret); ok {
					kind = "secret"
				}
				errs[i] = fmt.Errorf("creating %s %s: %w", kind, obj.GetName(), err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// recordJob stores the Job's UID on the build (it tells this build's Job from a same-named earlier one).
func (r *BuildReconciler) recordJob(ctx context.Context, mosb *mcfgv1.MachineOSBuild, job *batchv1.Job) error {
	before := mosb.DeepCopy()
	metav1.SetMetaDataAnnotation(&mosb.ObjectMeta, wellknown.JobUIDAnnotation, string(job.UID))
	delete(mosb.Annotations, WaitingAnnotation)
	if err := r.Client.Patch(ctx, mosb, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("recording job uid on machineosbuild %s: %w", mosb.Name, err)
	}
	r.Recorder.Eventf(mosb, nil, corev1.EventTypeNormal, EventBuildStarted, "Build", "Build started for pool %s (job %s)",
		mosb.Labels[wellknown.TargetMachineConfigPoolLabel], job.Name)
	return nil
}

// cleanupGrace is how long a successful build's pod may take to exit after recording the digest (closing
// its image store) before its Job is deleted anyway.
const cleanupGrace = 30 * time.Second

// setState writes the build's conditions for state (if the transition is allowed), buildEnd for terminal
// states, and whatever mutate changes, in one status patch.
func (r *BuildReconciler) setState(ctx context.Context, mosb *mcfgv1.MachineOSBuild, state osbuild.State, mutate func(*mcfgv1.MachineOSBuildStatus)) error {
	return r.setStateWithJob(ctx, mosb, state, nil, mutate)
}

// setStateWithJob is setState for a build whose Job is known (its metrics use it).
func (r *BuildReconciler) setStateWithJob(ctx context.Context, mosb *mcfgv1.MachineOSBuild, state osbuild.State, job *batchv1.Job, mutate func(*mcfgv1.MachineOSBuildStatus)) error {
	if !osbuild.CanTransition(osbuild.StateOf(mosb), state) {
		return nil
	}
	before := mosb.DeepCopy()
	now := r.now()
	mosb.Status.Conditions = osbuild.Conditions(state, mosb.Status.Conditions, now)
	if mutate != nil {
		mutate(&mosb.Status)
	}
	if state.IsTerminal() && mosb.Status.BuildEnd == nil {
		start := mosb.CreationTimestamp
		if mosb.Status.BuildStart != nil {
			start = *mosb.Status.BuildStart
		}
		s, e := osbuild.BuildTimes(start, now)
		mosb.Status.BuildStart, mosb.Status.BuildEnd = &s, &e
	}
	if err := r.Client.Status().Patch(ctx, mosb, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("writing state %s of machineosbuild %s: %w", state, mosb.Name, err)
	}
	log.FromContext(ctx).Info("build state", "machineosbuild", mosb.Name, "state", state)
	r.Metrics.record(mosb, state, job)
	return nil
}

// waitFor reports why a build cannot start yet and looks again later.
// The reason is also kept on the build (WaitingAnnotation), for the MachineOSConfig's Ready condition.
func (r *BuildReconciler) waitFor(ctx context.Context, mosb *mcfgv1.MachineOSBuild, why string) (ctrl.Result, error) {
	if mosb.Annotations[WaitingAnnotation] != why {
		before := mosb.DeepCopy()
		metav1.SetMetaDataAnnotation(&mosb.ObjectMeta, WaitingAnnotation, why)
		if err := r.Client.Patch(ctx, mosb, client.MergeFrom(before)); err != nil {
			return ctrl.Result{}, fmt.Errorf("recording why machineosbuild %s waits: %w", mosb.Name, err)
		}
		r.Recorder.Eventf(mosb, nil, corev1.EventTypeWarning, EventBuildWaiting, "Build", "%s", why)
	}
	return ctrl.Result{RequeueAfter: secretWait}, nil
}

// secret reads a secret of the build namespace straight from the API server — secrets are never cached or
// watched — and a missing one is a reason to wait, not an error.
func (r *BuildReconciler) secret(ctx context.Context, name string) (*corev1.Secret, string, error) {
	s := &corev1.Secret{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: r.Jobs.Namespace, Name: name}, s)
	if apierrors.IsNotFound(err) {
		return nil, fmt.Sprintf("secret %s/%s not found; the build starts when it exists", r.Jobs.Namespace, name), nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("reading secret %s: %w", name, err)
	}
	return s, "", nil
}

// runMounts returns the entitlement objects of the build namespace that exist (jobs.EntitlementMounts):
// only their metadata is read, never their content.
func (r *BuildReconciler) runMounts(ctx context.Context, pool string) ([]jobs.RunMount, error) {
	var found []jobs.RunMount
	for _, m := range jobs.EntitlementMounts(pool) {
		for _, name := range m.Names {
			meta := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: string(m.Kind)}}
			err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: r.Jobs.Namespace, Name: name}, meta)
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("looking for %s %s/%s: %w", m.Kind, r.Jobs.Namespace, name, err)
			}
			m.Name = name
			found = append(found, m)
			break
		}
	}
	return found, nil
}

func basePullSecretName(mosc *mcfgv1.MachineOSConfig) string {
	if mosc.Spec.BaseImagePullSecret != nil && mosc.Spec.BaseImagePullSecret.Name != "" {
		return mosc.Spec.BaseImagePullSecret.Name
	}
	return wellknown.GlobalPullSecretCopy
}

func (r *BuildReconciler) now() metav1.Time { return metav1.NewTime(r.Clock.Now()) }

func ptrTime(t metav1.Time) *metav1.Time { return &t }

// SetupWithManager watches MachineOSBuilds and the Jobs they control.
func (r *BuildReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("machineosbuild").
		For(&mcfgv1.MachineOSBuild{}).
		Watches(&batchv1.Job{}, handler.EnqueueRequestForOwner(mgr.GetScheme(), mgr.GetRESTMapper(), &mcfgv1.MachineOSBuild{}, handler.OnlyControllerOwner())).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(buildOfDigestConfigMap)).
		Watches(&corev1.Pod{}, handler.Funcs{
			UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				r.podChanged(e.ObjectNew, q)
			},
			DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				r.podChanged(e.Object, q)
			},
		}).
		Complete(r)
}

// podChanged remembers a build pod's failure (the pod may be gone before the build is reconciled) and
// queues its build.
func (r *BuildReconciler) podChanged(obj client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Labels[wellknown.MachineOSBuildLabel] == "" {
		return
	}
	r.attempts.observe(pod)
	if DescribeFailedPod(pod) != "" {
		q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Name: pod.Labels[wellknown.MachineOSBuildLabel]}})
	}
}

// recordAttempts records on a running build the failed attempts (pods) of its Job not recorded yet — those
// the pod watch remembered and those still in the cache — each with a BuildAttemptFailed event, and puts
// them in obs.
func (r *BuildReconciler) recordAttempts(ctx context.Context, obs *BuildObservation) error {
	mosb, job := obs.Build, obs.Job
	obs.Attempts = FailedAttemptsOf(mosb)
	if job == nil || !metav1.IsControlledBy(job, mosb) || osbuild.StateOf(mosb).IsTerminal() {
		if osbuild.StateOf(mosb).IsTerminal() {
			r.attempts.forget(mosb.Name)
		}
		return nil
	}
	failed := r.attempts.failed(mosb.Name, job.UID)
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.InNamespace(r.Jobs.Namespace), client.MatchingLabels{wellknown.MachineOSBuildLabel: mosb.Name}); err != nil {
		return fmt.Errorf("listing the pods of job %s: %w", job.Name, err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if cause := DescribeFailedPod(p); cause != "" && metav1.IsControlledBy(p, job) {
			failed[p.Name] = cause
		}
	}
	added, all := NewFailedAttempts(obs.Attempts, failed)
	if len(added) == 0 {
		return nil
	}
	raw, err := json.Marshal(all)
	if err != nil {
		return err
	}
	before := mosb.DeepCopy()
	metav1.SetMetaDataAnnotation(&mosb.ObjectMeta, FailedAttemptsAnnotation, string(raw))
	if err := r.Client.Patch(ctx, mosb, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("recording failed attempts on machineosbuild %s: %w", mosb.Name, err)
	}
	for i, a := range added {
		n := len(all) - len(added) + i + 1
		r.Recorder.Eventf(mosb, nil, corev1.EventTypeWarning, EventBuildAttemptFailed, "Build", "Attempt %d of %d (pod %s) failed: %s",
			n, jobs.BackoffLimit+1, a.Pod, a.Cause)
	}
	obs.Attempts = all
	return nil
}

// buildOfDigestConfigMap maps a build's digest ConfigMap to the build.
func buildOfDigestConfigMap(_ context.Context, obj client.Object) []reconcile.Request {
	name := obj.GetLabels()[wellknown.MachineOSBuildLabel]
	if name == "" || obj.GetName() != osbuild.DigestCMName(name) {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: name}}}
}
