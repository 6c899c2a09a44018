package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	opv1 "github.com/openshift/api/operator/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	rolloutsv1 "github.com/imagemode/imagemode/api/rollouts/v1alpha1"
	"github.com/imagemode/imagemode/daemon"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/registry/signing"
	"github.com/imagemode/imagemode/render/machineconfig"
)

// Options configures a node's agent.
type Options struct {
	// NodeName is the node the agent runs on; it only ever reads and writes that node.
	NodeName string
	// Host is the node's host: filesystem root, rpm-ostree and systemd.
	Host daemon.Host
	// AuthFile is the host path of the pull secret OS images are pulled with (default
	// /var/lib/kubelet/config.json; none when the file does not exist).
	AuthFile string
	// MachineConfigurationName names the operator MachineConfiguration whose status holds the node
	// disruption policies (default "cluster").
	MachineConfigurationName string
	// Metrics receives the mcd_* metrics; nil creates unregistered ones.
	Metrics *Metrics
	// Clock is the time source (default the real clock).
	Clock clock.PassiveClock
	// TrustedKeys says which public keys a layered image's repository must be signed with; with keys, the
	// node's signature policy requires them and the image is pulled as ostree-image-signed. Nil: images
	// are never verified (Run and imagemode-daemon read the build namespace's trusted keys ConfigMaps).
	TrustedKeys signing.TrustedKeys
	// Commands runs a RolloutPolicy's health checks on the host (default: the Host's, when it is a
	// daemon.CommandHost).
	Commands daemon.CommandRunner
}

func (o *Options) defaults() {
	if o.AuthFile == "" {
		o.AuthFile = "/var/lib/kubelet/config.json"
	}
	if o.MachineConfigurationName == "" {
		o.MachineConfigurationName = "cluster"
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
}

// Agent is the node agent's reconciler. It is keyed by its own node and level-triggered: each pass observes
// the node, the host's on-disk record and journal, takes one step (see Decide) and returns; the step's
// effects trigger the next pass. Waiting (for a drain, an uncordon or a config) never blocks it.
type Agent struct {
	client   client.Client
	recorder events.EventRecorder
	opts     Options
	store    Store
	metrics  *Metrics

	// rebootQueued is set once a reboot is queued: the agent then does nothing until it is stopped.
	rebootQueued atomic.Bool

	driftMu    sync.Mutex
	drift      *daemon.DriftMonitor
	driftFor   string
	driftEvent chan event.GenericEvent
}

// New returns the agent for opts.NodeName.
func New(c client.Client, recorder events.EventRecorder, opts Options) (*Agent, error) {
	opts.defaults()
	if opts.NodeName == "" || opts.Host == nil {
		return nil, errors.New("agent: NodeName and Host are required")
	}
	m := opts.Metrics
	if m == nil {
		var err error
		if m, err = NewMetrics(noRegistry{}); err != nil {
			return nil, err
		}
	}
	return &Agent{client: c, recorder: recorder, opts: opts, store: Store{Root: opts.Host.Root()}, metrics: m,
		driftEvent: make(chan event.GenericEvent, 1)}, nil
}

// Reconcile takes the node's next step.
func (a *Agent) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if req.Name != a.opts.NodeName || a.rebootQueued.Load() {
		return ctrl.Result{}, nil
	}
	node := &corev1.Node{}
	if err := a.client.Get(ctx, client.ObjectKey{Name: a.opts.NodeName}, node); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	facts, err := a.observe(node)
	if err != nil {
		return ctrl.Result{}, a.fail(ctx, node, facts.Desired, err)
	}
	step := Decide(facts)
	log := ctrl.LoggerFrom(ctx)
	log.V(1).Info("step", "step", step.Kind, "why", step.Why)
	var res ctrl.Result
	switch step.Kind {
	case StepWait:
		return ctrl.Result{}, nil
	case StepUpdate:
		res, err = a.update(ctx, node, facts)
	case StepReboot:
		err = a.reboot(ctx, node, facts.Journal)
	case StepPostActions:
		err = a.postActions(ctx, node, facts.Journal)
		// The next step depends on the journal, not on the Node: a new pass at once (Requeue would wait
		// for the failure back-off, 0.5 s and then 1 s, on every rebootless update).
		res.RequeueAfter = nextPhaseAfter
	case StepFinish:
		err = a.finish(ctx, node, facts.Journal, step.Rebooted)
		res.RequeueAfter = nextPhaseAfter
	case StepUncordon:
		err = a.patchNode(ctx, node, map[string]*string{
			wellknown.DesiredDrainAnnotation: ptr(wellknown.UncordonVerb + "-" + facts.Desired.Config)})
	case StepValidate:
		err = a.validate(ctx, node, facts)
	}
	if err != nil {
		var unrec *machineconfig.UnreconcilableError
		if errors.As(err, &unrec) {
			return ctrl.Result{}, a.unreconcilable(ctx, node, facts.Desired, err)
		}
		return ctrl.Result{}, a.fail(ctx, node, facts.Desired, err)
	}
	return res, nil
}

// observe reads what Decide needs.
func (a *Agent) observe(node *corev1.Node) (Facts, error) {
	an := node.Annotations
	f := Facts{
		Desired:          Target{Config: an[wellknown.DesiredConfigAnnotation], Image: an[wellknown.DesiredImageAnnotation]},
		Annotated:        Target{Config: an[wellknown.CurrentConfigAnnotation], Image: an[wellknown.CurrentImageAnnotation]},
		State:            an[wellknown.StateAnnotation],
		DesiredDrain:     an[wellknown.DesiredDrainAnnotation],
		LastAppliedDrain: an[wellknown.LastAppliedDrainAnnotation],
	}
	var err error
	if f.OnDisk, _, err = a.store.Current(); err != nil {
		return f, err
	}
	if f.Journal, err = a.store.Journal(); err != nil {
		return f, err
	}
	if f.BootID, err = a.opts.Host.BootID(); err != nil {
		return f, fmt.Errorf("reading the boot ID: %w", err)
	}
	_, err = os.Lstat(a.opts.Host.Root().HostPath(wellknown.ForceFile))
	f.Force = err == nil
	return f, nil
}

// update plans the change from the on-disk config to the desired one and applies it: files, units, core
// user, then the OS (rebase, kernel arguments), then the on-disk record. A drain is requested first when the
// plan needs one; the agent returns and carries on once the drain controller reports it done.
func (a *Agent) update(ctx context.Context, node *corev1.Node, f Facts) (ctrl.Result, error) {
	desiredMC := &mcfgv1.MachineConfig{}
	if err := a.client.Get(ctx, client.ObjectKey{Name: f.Desired.Config}, desiredMC); err != nil {
		if apierrors.IsNotFound(err) {
			ctrl.LoggerFrom(ctx).Info("waiting for the desired MachineConfig", "config", f.Desired.Config)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	_, currentMC, err := a.store.Current()
	if err != nil {
		return ctrl.Result{}, err
	}
	oldImage := ""
	if f.OnDisk != nil {
		oldImage = f.OnDisk.Image
	}
	oldMC, newMC := withImage(currentMC, oldImage), withImage(desiredMC, f.Desired.Image)
	plan, err := a.plan(ctx, oldMC, newMC, f)
	if err != nil {
		return ctrl.Result{}, err
	}
	current := ""
	if f.OnDisk != nil {
		current = f.OnDisk.Config
	}
	if err := a.updateMCN(ctx, current, f.Desired.Config,
		Cond{Type: mcfgv1.MachineConfigNodeUpdated, Status: "False", Message: fmt.Sprintf("Node %s needs an update", a.opts.NodeName)},
		Cond{Type: mcfgv1.MachineConfigNodeUpdatePrepared, Status: "True",
			Message: fmt.Sprintf("Update Compatible. Post Cfg Actions: %v Drain Required: %t", plan.Actions, plan.Drain)}); err != nil {
		return ctrl.Result{}, err
	}
	drainValue := wellknown.DrainVerb + "-" + f.Desired.Config
	if plan.Drain && f.LastAppliedDrain != drainValue {
		patch := map[string]*string{wellknown.DesiredDrainAnnotation: ptr(drainValue)}
		if f.State != wellknown.NodeStateDegraded {
			patch[wellknown.StateAnnotation] = ptr(wellknown.NodeStateWorking)
			a.metrics.setState(wellknown.NodeStateWorking, "")
		}
		if f.DesiredDrain != drainValue {
			a.recorder.Eventf(node, nil, corev1.EventTypeNormal, EventDrain, "Update", "Draining node to update config %s", f.Desired)
		}
		return ctrl.Result{}, a.patchNode(ctx, node, patch)
	}
	if plan.Drain {
		if err := a.updateMCN(ctx, current, f.Desired.Config, Cond{Type: mcfgv1.MachineConfigNodeUpdateDrained,
			Status: "True", Message: "Drained node"}); err != nil {
			return ctrl.Result{}, err
		}
	}
	if f.State != wellknown.NodeStateWorking && f.State != wellknown.NodeStateDegraded {
		if err := a.patchNode(ctx, node, map[string]*string{wellknown.StateAnnotation: ptr(wellknown.NodeStateWorking),
			wellknown.ReasonAnnotation: nil}); err != nil {
			return ctrl.Result{}, err
		}
		a.metrics.setState(wellknown.NodeStateWorking, "")
	}
	from := Target{}
	if f.OnDisk != nil {
		from = *f.OnDisk
	}
	j := &Journal{Target: f.Desired, From: from, Actions: plan.Actions, Drain: plan.Drain, Phase: PhaseApplying, BootID: f.BootID}
	if err := a.store.SetJournal(j); err != nil {
		return ctrl.Result{}, err
	}
	a.stopDrift()
	if err := daemon.ApplyConfig(ctx, a.opts.Host.Root(), a.opts.Host.Systemd(), currentMC, desiredMC,
		daemon.ApplyOptions{Force: f.Force}); err != nil {
		return ctrl.Result{}, fmt.Errorf("applying config %s: %w", f.Desired.Config, err)
	}
	if err := a.applyOS(ctx, oldMC, newMC, plan.Diff, f); err != nil {
		return ctrl.Result{}, a.rollBack(ctx, currentMC, desiredMC, err)
	}
	if err := a.store.SetCurrent(desiredMC, f.Desired.Image); err != nil {
		return ctrl.Result{}, a.rollBack(ctx, currentMC, desiredMC, err)
	}
	j.Phase = PhaseApplied
	if err := a.store.SetJournal(j); err != nil {
		return ctrl.Result{}, err
	}
	if f.Force {
		if err := os.Remove(a.opts.Host.Root().HostPath(wellknown.ForceFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return ctrl.Result{}, fmt.Errorf("removing the force file: %w", err)
		}
	}
	a.metrics.setUpdate(f.Desired.Config, nil)
	if err := a.updateMCN(ctx, f.Desired.Config, f.Desired.Config, Cond{Type: mcfgv1.MachineConfigNodeUpdateFilesAndOS,
		Status: "True", Message: fmt.Sprintf("Applied files and new OS config to node %s", a.opts.NodeName)},
		Cond{Type: mcfgv1.MachineConfigNodeUpdateExecuted, Status: "True", Message: "Updated the files and the OS on disk"}); err != nil {
		return ctrl.Result{}, err
	}
	// The next phase (the reboot the plan owes, or finishing the update) runs in a pass of its own, which
	// re-reads the node and the journal just written.
	return ctrl.Result{RequeueAfter: nextPhaseAfter}, nil
}

// nextPhaseAfter is how soon the pass after a completed phase (apply, post-change actions, finish) runs: at
// once, but as a new pass, and not after the rate limiter's failure back-off.
const nextPhaseAfter = time.Millisecond

// rollBack undoes an update whose files were written but whose OS change (or on-disk record) failed, as
// the reference does: the files, units and core user of current are applied again (desired→current) and
// the pending deployment is removed, so a node Degraded by a failed rebase keeps running its previous
// config. It returns cause, joined with the rollback's errors. With no current config there is nothing to
// go back to.
func (a *Agent) rollBack(ctx context.Context, current, desired *mcfgv1.MachineConfig, cause error) error {
	if current == nil {
		return cause
	}
	errs := []error{cause}
	if err := daemon.ApplyConfig(ctx, a.opts.Host.Root(), a.opts.Host.Systemd(), desired, current, daemon.ApplyOptions{}); err != nil {
		errs = append(errs, fmt.Errorf("rolling back the files of config %s: %w", desired.Name, err))
	}
	if err := a.opts.Host.OS().CleanupPending(ctx); err != nil {
		errs = append(errs, fmt.Errorf("removing the pending deployment: %w", err))
	}
	return errors.Join(errs...)
}

// Plan is what an update will do.
type Plan struct {
	Diff    *daemon.ConfigDiff
	Actions []daemon.Action
	Drain   bool
}

func (a *Agent) plan(ctx context.Context, oldMC, newMC *mcfgv1.MachineConfig, f Facts) (*Plan, error) {
	if err := daemon.CheckPaths(newMC); err != nil {
		return nil, err
	}
	if oldMC != nil {
		if err := machineconfig.Reconcilable(&oldMC.Spec, &newMC.Spec); err != nil {
			return nil, err
		}
	}
	diff, err := daemon.Diff(oldMC, newMC)
	if err != nil {
		return nil, err
	}
	var actions []daemon.Action
	switch {
	case f.Force:
		actions = []daemon.Action{{Type: daemon.ActionReboot}}
	case oldMC == nil:
		// First configuration of the host: a reboot only when its OS must change.
		actions = []daemon.Action{{Type: daemon.ActionNone}}
		if diff.OSChanged() {
			actions = []daemon.Action{{Type: daemon.ActionReboot}}
		}
	default:
		policies, err := a.policies(ctx)
		if err != nil {
			return nil, err
		}
		oldReg, _, _ := daemon.ConfigFile(oldMC, daemon.RegistriesConfPath)
		newReg, _, _ := daemon.ConfigFile(newMC, daemon.RegistriesConfPath)
		actions = daemon.Actions(diff, policies, oldReg, newReg)
	}
	actions = MergePendingActions(f.Journal, f.BootID, actions)
	return &Plan{Diff: diff, Actions: actions, Drain: daemon.NeedsDrain(actions)}, nil
}

// policies returns the cluster's node disruption policies (defaults when MachineConfiguration/cluster
// has none yet).
func (a *Agent) policies(ctx context.Context) (opv1.NodeDisruptionPolicyClusterStatus, error) {
	mc := &opv1.MachineConfiguration{}
	err := a.client.Get(ctx, client.ObjectKey{Name: a.opts.MachineConfigurationName}, mc)
	if apierrors.IsNotFound(err) {
		return opv1.NodeDisruptionPolicyClusterStatus{}, fmt.Errorf("MachineConfiguration %s not found: its node disruption policies are needed", a.opts.MachineConfigurationName)
	}
	if err != nil {
		return opv1.NodeDisruptionPolicyClusterStatus{}, err
	}
	if mc.Generation != 0 && mc.Status.ObservedGeneration != mc.Generation {
		return opv1.NodeDisruptionPolicyClusterStatus{}, fmt.Errorf("MachineConfiguration %s: status.observedGeneration %d is behind generation %d; waiting for its node disruption policies",
			mc.Name, mc.Status.ObservedGeneration, mc.Generation)
	}
	return mc.Status.NodeDisruptionPolicyStatus.ClusterPolicies, nil
}

// applyOS stages the OS change: a rebase to the new image when the booted (or staged) one differs, then
// the kernel argument change and, in a classic pool, the kernel type and extensions (package changes).
func (a *Agent) applyOS(ctx context.Context, oldMC, newMC *mcfgv1.MachineConfig, diff *daemon.ConfigDiff, f Facts) error {
	if !diff.OSChanged() && !f.Force {
		return nil
	}
	osu := a.opts.Host.OS()
	if err := osu.CleanupPending(ctx); err != nil {
		return fmt.Errorf("removing the pending deployment: %w", err)
	}
	status, err := osu.Status(ctx)
	if err != nil {
		return fmt.Errorf("reading the OS status: %w", err)
	}
	target := newMC.Spec.OSImageURL
	if target != "" && !SameImage(status.BootedImage(), target) {
		auth := a.opts.AuthFile
		if _, err := os.Stat(a.opts.Host.Root().HostPath(auth)); err != nil {
			auth = ""
		}
		if err := a.rebase(ctx, osu, target, auth, f.Desired.Image != ""); err != nil {
			a.metrics.PivotErrors.Inc()
			_ = a.updateMCN(ctx, "", f.Desired.Config, Cond{Type: mcfgv1.MachineConfigNodeImagePulledFromRegistry, Status: "False",
				Message: fmt.Sprintf("Failed to pull %s: %v", target, err)})
			return fmt.Errorf("rebasing to %s: %w", target, err)
		}
	}
	oldKargs := []string{}
	if oldMC != nil {
		oldKargs = oldMC.Spec.KernelArguments
	}
	if diff.KernelArguments {
		args, err := daemon.KargsArgs(oldKargs, newMC.Spec.KernelArguments)
		if err != nil {
			return fmt.Errorf("config %s: spec.kernelArguments: %w", newMC.Name, err)
		}
		if len(args) > 0 {
			if err := osu.Kargs(ctx, args); err != nil {
				return fmt.Errorf("changing kernel arguments: %w", err)
			}
		}
	}
	// A layered pool's image carries its kernel and extensions; a classic pool layers packages.
	if f.Desired.Image == "" && (diff.KernelType || diff.Extensions || f.Force) {
		return applyPackages(ctx, osu, oldMC, newMC)
	}
	return nil
}

// reboot queues the reboot the journal owes. The agent then stops working: a real reboot kills it.
func (a *Agent) reboot(ctx context.Context, node *corev1.Node, j *Journal) error {
	if err := a.patchNode(ctx, node, map[string]*string{wellknown.PostConfigActionAnnotation: ptr(wellknown.PostConfigActionRebooting)}); err != nil {
		return err
	}
	if err := a.updateMCN(ctx, j.Target.Config, j.Target.Config, Cond{Type: mcfgv1.MachineConfigNodeUpdateRebooted,
		Status: "Unknown", Message: "Rebooting the node"}); err != nil {
		return err
	}
	reason := "rebooting to apply config " + j.Target.String()
	a.recorder.Eventf(node, nil, corev1.EventTypeNormal, EventReboot, "Update", "Node will reboot into config %s", j.Target)
	a.rebootQueued.Store(true)
	a.stopDrift()
	if err := a.opts.Host.Systemd().Reboot(ctx, reason); err != nil {
		a.rebootQueued.Store(false)
		a.metrics.RebootsFailed.Inc()
		return fmt.Errorf("queueing the reboot: %w", err)
	}
	return nil
}

// postActions performs the journal's rebootless actions, in order.
func (a *Agent) postActions(ctx context.Context, node *corev1.Node, j *Journal) error {
	sd := a.opts.Host.Systemd()
	for _, act := range j.Actions {
		var err error
		switch act.Type {
		case daemon.ActionReload:
			err = sd.Reload(ctx, act.Service)
		case daemon.ActionRestart:
			err = sd.Restart(ctx, act.Service)
		case daemon.ActionDaemonReload:
			err = sd.DaemonReload(ctx)
		case daemon.ActionNone:
			a.recorder.Eventf(node, nil, corev1.EventTypeNormal, EventSkipReboot, "Update",
				"Config changes do not require reboot. Service crio was not reloaded.")
		}
		if err != nil {
			return fmt.Errorf("post-change action %s: %w", act, err)
		}
	}
	j.Phase = PhaseActionsDone
	if err := a.store.SetJournal(j); err != nil {
		return err
	}
	return a.updateMCN(ctx, j.Target.Config, j.Target.Config, Cond{Type: mcfgv1.MachineConfigNodeUpdatePostActionComplete,
		Status: "True", Message: fmt.Sprintf("Performed post-change actions %v", j.Actions)})
}

// finish closes an update: after a reboot it checks the booted OS is the target and, when the host no
// longer holds the config's files and units (an OS switch replaces /etc defaults, which may drop files the
// previous image carried), writes them again; then it removes the journal.
func (a *Agent) finish(ctx context.Context, node *corev1.Node, j *Journal, rebooted bool) error {
	_, mc, err := a.store.Current()
	if err != nil {
		return err
	}
	if mc == nil || mc.Name != j.Target.Config {
		// The on-disk record does not match the journal: redo the update.
		return a.store.ClearJournal()
	}
	if rebooted {
		if err := a.checkBootedImage(ctx, withImage(mc, j.Target.Image)); err != nil {
			return err
		}
		// The OS switch may have dropped files or units of the config (those the previous image carried in
		// its /etc): the config is written again only then, so that an update writes its files once.
		if daemon.ValidateOnDisk(ctx, a.opts.Host.Root(), a.opts.Host.Systemd(), mc) != nil {
			if err := daemon.ApplyConfig(ctx, a.opts.Host.Root(), a.opts.Host.Systemd(), mc, mc, daemon.ApplyOptions{Force: true}); err != nil {
				return fmt.Errorf("writing config %s again after the reboot: %w", mc.Name, err)
			}
		}
		if err := a.updateMCN(ctx, j.Target.Config, j.Target.Config, Cond{Type: mcfgv1.MachineConfigNodeUpdateRebooted,
			Status: "True", Message: "Node rebooted"}); err != nil {
			return err
		}
	}
	if _, ok := node.Annotations[wellknown.PostConfigActionAnnotation]; ok {
		if err := a.patchNode(ctx, node, map[string]*string{wellknown.PostConfigActionAnnotation: nil}); err != nil {
			return err
		}
	}
	return a.store.ClearJournal()
}

// checkBootedImage reports an error when the booted OS image is not the one mc names.
func (a *Agent) checkBootedImage(ctx context.Context, mc *mcfgv1.MachineConfig) error {
	if mc.Spec.OSImageURL == "" {
		return nil
	}
	status, err := a.opts.Host.OS().Status(ctx)
	if err != nil {
		return fmt.Errorf("reading the OS status: %w", err)
	}
	if booted := status.BootedImage(); !SameImage(booted, mc.Spec.OSImageURL) {
		return fmt.Errorf("the node booted %q, expected %q (config %s)", booted, mc.Spec.OSImageURL, mc.Name)
	}
	return nil
}

// checkKargs reports an error when a kernel argument of mc is missing from the next boot's arguments.
func (a *Agent) checkKargs(ctx context.Context, mc *mcfgv1.MachineConfig) error {
	want, err := daemon.ParseKernelArgs(mc.Spec.KernelArguments)
	if err != nil || len(want) == 0 {
		return err
	}
	have, err := a.opts.Host.OS().KernelArgs(ctx)
	if err != nil {
		return fmt.Errorf("reading the kernel arguments: %w", err)
	}
	set := map[string]bool{}
	for _, k := range have {
		set[k] = true
	}
	for _, k := range want {
		if !set[k] {
			return fmt.Errorf("kernel argument %q of config %s is missing", k, mc.Name)
		}
	}
	return nil
}

// validate checks the host against its on-disk config (files, units, booted image, kernel arguments) and
// reports Done, or Degraded with what drifted.
func (a *Agent) validate(ctx context.Context, node *corev1.Node, f Facts) error {
	_, mc, err := a.store.Current()
	if err != nil {
		return err
	}
	if err := a.checkBootedImage(ctx, withImage(mc, f.Desired.Image)); err != nil {
		return err
	}
	if err := a.checkKargs(ctx, mc); err != nil {
		return err
	}
	if err := daemon.ValidateOnDisk(ctx, a.opts.Host.Root(), a.opts.Host.Systemd(), mc); err != nil {
		a.metrics.ConfigDrift.Set(float64(a.opts.Clock.Now().Unix()))
		if node.Annotations[wellknown.ReasonAnnotation] != driftReason(err) {
			a.recorder.Eventf(node, nil, corev1.EventTypeWarning, EventConfigDriftDetected, "Validate", "%v", err)
		}
		a.startDrift(ctx, mc)
		return &driftError{err: err}
	}
	a.startDrift(ctx, mc)
	patch := map[string]*string{}
	set := func(k, v string) {
		if node.Annotations[k] != v {
			patch[k] = ptr(v)
		}
	}
	set(wellknown.StateAnnotation, wellknown.NodeStateDone)
	set(wellknown.CurrentConfigAnnotation, f.Desired.Config)
	if f.Desired.Image != "" {
		set(wellknown.CurrentImageAnnotation, f.Desired.Image)
	} else if _, ok := node.Annotations[wellknown.CurrentImageAnnotation]; ok {
		patch[wellknown.CurrentImageAnnotation] = nil
	}
	if _, ok := node.Annotations[wellknown.ReasonAnnotation]; ok && node.Annotations[wellknown.ReasonAnnotation] != "" {
		patch[wellknown.ReasonAnnotation] = ptr("")
	}
	a.metrics.setState(wellknown.NodeStateDone, "")
	a.metrics.setUpdate(f.Desired.Config, nil) // a failure reported earlier (or drift) is over
	a.metrics.ConfigDrift.Set(0)
	if err := a.updateMCN(ctx, f.Desired.Config, f.Desired.Config,
		Cond{Type: mcfgv1.MachineConfigNodeUpdateUncordoned, Status: "True", Message: "Node is schedulable"},
		Cond{Type: mcfgv1.MachineConfigNodeResumed, Status: "True", Message: "Daemon resumed on the node"},
		Cond{Type: mcfgv1.MachineConfigNodeUpdateComplete, Status: "True", Message: "Update complete"},
		Cond{Type: mcfgv1.MachineConfigNodeNodeDegraded, Status: "False", Message: "Node is not degraded"},
		Cond{Type: mcfgv1.MachineConfigNodeUpdated, Status: "True",
			Message: fmt.Sprintf("Node %s Updated", a.opts.NodeName)}); err != nil {
		return err
	}
	if report, ok := a.healthReport(ctx, node, f.Desired); ok {
		patch[rolloutsv1.HealthReportAnnotation] = ptr(report)
	}
	if len(patch) == 0 {
		return nil
	}
	if node.Annotations[wellknown.StateAnnotation] != wellknown.NodeStateDone {
		a.recorder.Eventf(node, nil, corev1.EventTypeNormal, EventNodeDone, "Update", "Node is on config %s", f.Desired)
	}
	return a.patchNode(ctx, node, patch)
}

// driftError marks a validation failure, reported as Degraded without a retry storm: the drift monitor
// triggers the next check.
type driftError struct{ err error }

func (e *driftError) Error() string { return e.err.Error() }
func (e *driftError) Unwrap() error { return e.err }

func driftReason(err error) string { return truncate(err.Error()) }

// fail reports err on the node (state Degraded, reason) and its MachineConfigNode, and returns it so the
// pass is retried with back-off (drift is not retried: the drift monitor reports the fix).
func (a *Agent) fail(ctx context.Context, node *corev1.Node, desired Target, err error) error {
	ctrl.LoggerFrom(ctx).Error(err, "update failed", "target", desired.String())
	reason := truncate(err.Error())
	a.metrics.setState(wellknown.NodeStateDegraded, reason)
	a.metrics.setUpdate(desired.Config, err)
	patchErr := a.patchNode(ctx, node, map[string]*string{
		wellknown.StateAnnotation: ptr(wellknown.NodeStateDegraded), wellknown.ReasonAnnotation: ptr(reason)})
	mcnErr := a.updateMCN(ctx, "", desired.Config, Cond{Type: mcfgv1.MachineConfigNodeNodeDegraded, Status: "True", Message: reason})
	var drift *driftError
	if errors.As(err, &drift) {
		return errors.Join(patchErr, mcnErr)
	}
	return errors.Join(err, patchErr, mcnErr)
}

// unreconcilable reports a config the node cannot move to; it is not retried until the target changes.
func (a *Agent) unreconcilable(ctx context.Context, node *corev1.Node, desired Target, err error) error {
	reason := truncate(err.Error())
	a.recorder.Eventf(node, nil, corev1.EventTypeWarning, EventFailedToReconcile, "Update", "%s", reason)
	a.metrics.setState(wellknown.NodeStateUnreconcilable, reason)
	return errors.Join(
		a.patchNode(ctx, node, map[string]*string{
			wellknown.StateAnnotation: ptr(wellknown.NodeStateUnreconcilable), wellknown.ReasonAnnotation: ptr(reason)}),
		a.updateMCN(ctx, "", desired.Config, Cond{Type: mcfgv1.MachineConfigNodeUpdatePrepared, Status: "False", Message: reason}))
}

// patchNode merges annotation changes into the node (a nil value removes the key).
func (a *Agent) patchNode(ctx context.Context, node *corev1.Node, annotations map[string]*string) error {
	if len(annotations) == 0 {
		return nil
	}
	data, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": annotations}})
	if err != nil {
		return err
	}
	if err := a.client.Patch(ctx, node, client.RawPatch(types.MergePatchType, data)); err != nil {
		return fmt.Errorf("updating the annotations of node %s: %w", node.Name, err)
	}
	return nil
}

// maxReason is the reference's truncation of the reason annotation.
const maxReason = 2000

func truncate(s string) string {
	if len(s) <= maxReason {
		return s
	}
	return s[:maxReason]
}

func ptr(s string) *string { return &s }

// withImage returns a copy of mc whose osImageURL is image (mc itself when image is empty or mc nil): in a
// layered pool the node's OS is the pool's built image, not the rendered config's base image.
func withImage(mc *mcfgv1.MachineConfig, image string) *mcfgv1.MachineConfig {
	if mc == nil || image == "" {
		return mc
	}
	out := mc.DeepCopy()
	out.Spec.OSImageURL = image
	return out
}

// SameImage reports whether two pull specs name the same image: equal, or the same repository and digest.
func SameImage(a, b string) bool {
	if a == b {
		return a != ""
	}
	ra, da, okA := strings.Cut(a, "@")
	rb, db, okB := strings.Cut(b, "@")
	if !okA || !okB || da != db {
		return false
	}
	trim := func(r string) string {
		if i := strings.LastIndex(r, ":"); i > strings.LastIndex(r, "/") {
			return r[:i]
		}
		return r
	}
	return trim(ra) == trim(rb)
}
