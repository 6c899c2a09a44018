package podrunner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/imagemode/imagemode/internal/childproc"
)

// Options configures a runner.
type Options struct {
	// Namespace and Selector choose the pods this runner runs.
	Namespace string
	Selector  labels.Selector
	// NodeName is the Node the runner binds pods to; it creates the Node if missing.
	NodeName string
	// StateDir holds a directory per pod: its volumes and its containers' logs.
	StateDir string
	// HostPathRoot is where hostPath volumes live (hostPath /x is HostPathRoot/x).
	HostPathRoot string
	// Programs maps the programs containers name as command[0] to local executables.
	Programs map[string]string
	// Env is added to every process's environment (e.g. KUBECONFIG for the API server).
	Env []string
	// KillGrace is how long a deleted pod's process has between SIGTERM and SIGKILL (default 10s).
	KillGrace time.Duration
}

// Runner runs the pods chosen by its options as local processes.
type Runner struct {
	Client client.Client
	Opts   Options

	mu       sync.Mutex
	procs    map[types.UID]*running
	finished map[types.UID]bool // pods whose end the runner reported (the cache may still show them Running)
	nodeDone bool
}

type running struct {
	proc    *childproc.Process
	logPath string
	stopped bool // the runner stopped it because the pod was deleted
}

// LogPath is where the runner keeps the output of a pod's container.
func (r *Runner) LogPath(pod *corev1.Pod, container string) string {
	return filepath.Join(r.podDir(pod), container+".log")
}

func (r *Runner) podDir(pod *corev1.Pod) string {
	return filepath.Join(r.Opts.StateDir, pod.Namespace+"_"+pod.Name+"_"+string(pod.UID))
}

// Reconcile moves one pod along its life: start it when pending, finalize it when deleted.
func (r *Runner) Reconcile(ctx context.Context, req reconcile.Request) (ctrl.Result, error) {
	pod := &corev1.Pod{}
	if err := r.Client.Get(ctx, req.NamespacedName, pod); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	switch {
	case pod.DeletionTimestamp != nil:
		return ctrl.Result{}, r.finalize(ctx, pod)
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		return ctrl.Result{}, nil
	case pod.Status.Phase == corev1.PodRunning:
		if r.isRunning(pod.UID) || r.isFinished(pod.UID) {
			return ctrl.Result{}, nil
		}
		// Running but not ours: the runner restarted and its processes died with it.
		return ctrl.Result{}, r.terminate(ctx, pod, -1, "ContainerStatusUnknown", "the pod runner restarted while the container ran")
	default:
		return r.start(ctx, pod)
	}
}

// Running reports whether the process of the pod with uid still runs.
func (r *Runner) Running(uid types.UID) bool { return r.isRunning(uid) }

func (r *Runner) isRunning(uid types.UID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.procs[uid]
	return ok
}

func (r *Runner) isFinished(uid types.UID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.finished[uid]
}

// start binds a pending pod, prepares its volumes and starts its (single) container.
func (r *Runner) start(ctx context.Context, pod *corev1.Pod) (ctrl.Result, error) {
	if r.isRunning(pod.UID) || r.isFinished(pod.UID) {
		return ctrl.Result{}, nil
	}
	if err := r.ensureNode(ctx); err != nil {
		return ctrl.Result{}, err
	}
	if pod.Spec.NodeName == "" {
		binding := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace},
			Target: corev1.ObjectReference{Kind: "Node", Name: r.Opts.NodeName}}
		if err := r.Client.SubResource("binding").Create(ctx, pod, binding); err != nil {
			return ctrl.Result{}, fmt.Errorf("binding pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
	}
	if len(pod.Spec.Containers) != 1 || len(pod.Spec.InitContainers) != 0 {
		return ctrl.Result{}, r.terminate(ctx, pod, 128, "RunContainerError", "the pod runner runs pods of exactly one container")
	}
	c := &pod.Spec.Containers[0]
	dir := r.podDir(pod)
	volumes := filepath.Join(dir, "volumes")
	if err := r.materialize(ctx, pod, volumes); err != nil {
		if errors.Is(err, errVolumeNotReady) {
			// As the kubelet: wait for the ConfigMap/Secret (its watch starts the pod when it appears; this
			// is the fallback).
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		return ctrl.Result{}, r.terminate(ctx, pod, 128, "CreateContainerConfigError", err.Error())
	}
	mounts, err := newMountMap(c, volumes)
	if err != nil {
		return ctrl.Result{}, r.terminate(ctx, pod, 128, "CreateContainerConfigError", err.Error())
	}
	argv, env, err := commandLine(c, mounts, r.Opts.Programs)
	if err != nil {
		return ctrl.Result{}, r.terminate(ctx, pod, 128, "RunContainerError", err.Error())
	}
	env = append(append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "HOSTNAME=" + pod.Name}, r.Opts.Env...), env...)
	logPath := r.LogPath(pod, c.Name)
	// Its own mount namespace, as a container's: a build killed mid-step leaves no mount of the layer cache
	// behind on this machine.
	proc, err := childproc.StartCommand(childproc.Command{Path: argv[0], Args: argv[1:], Env: env, Dir: dir, LogPath: logPath, PrivateMounts: true})
	if err != nil {
		return ctrl.Result{}, r.terminate(ctx, pod, 128, "RunContainerError", err.Error())
	}
	run := &running{proc: proc, logPath: logPath}
	r.mu.Lock()
	if r.procs == nil {
		r.procs = map[types.UID]*running{}
	}
	r.procs[pod.UID] = run
	r.mu.Unlock()
	log.FromContext(ctx).Info("started pod", "pod", client.ObjectKeyFromObject(pod), "pid", proc.Pid())

	now := metav1.Now()
	// Running is written before the exit is watched, so the end is always reported after it.
	err = r.updateStatus(ctx, pod, func(p *corev1.Pod) bool {
		if isTerminal(p) {
			return false
		}
		p.Status.Phase = corev1.PodRunning
		p.Status.StartTime = &now
		p.Status.HostIP = "127.0.0.1"
		p.Status.Conditions = podConditions(true, now)
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: true,
			Started: ptrTo(true), State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}}
		return true
	})
	go r.wait(context.WithoutCancel(ctx), pod, run)
	return ctrl.Result{}, err
}

// wait reports the container's end on the pod.
func (r *Runner) wait(ctx context.Context, pod *corev1.Pod, run *running) {
	<-run.proc.Exited()
	r.mu.Lock()
	stopped := run.stopped
	r.mu.Unlock()
	if !stopped { // finalize reports a deleted pod's end
		code := run.proc.ContainerExitCode()
		reason := "Completed"
		if code != 0 {
			reason = "Error"
		}
		if err := r.terminate(ctx, pod, code, reason, logTail(run.logPath, 4096)); err != nil && !apierrors.IsNotFound(err) {
			log.FromContext(ctx).Error(err, "reporting container exit", "pod", client.ObjectKeyFromObject(pod))
		}
	}
	r.mu.Lock()
	delete(r.procs, pod.UID)
	if r.finished == nil {
		r.finished = map[types.UID]bool{}
	}
	r.finished[pod.UID] = true
	r.mu.Unlock()
}

// finalize stops a deleted pod's process and removes the pod, as a kubelet does for a pod bound to it.
func (r *Runner) finalize(ctx context.Context, pod *corev1.Pod) error {
	r.mu.Lock()
	run := r.procs[pod.UID]
	if run != nil {
		run.stopped = true
	}
	r.mu.Unlock()
	if run != nil {
		grace := r.Opts.KillGrace
		if grace == 0 {
			grace = 10 * time.Second
		}
		if err := run.proc.Stop(grace); err != nil {
			return err
		}
		if err := r.terminate(ctx, pod, 137, "Killed", "the pod was deleted"); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	if pod.Spec.NodeName == "" {
		return nil // never bound: the API server removes it without a kubelet
	}
	err := r.Client.Delete(ctx, pod, client.GracePeriodSeconds(0), client.Preconditions{UID: &pod.UID})
	if err == nil || apierrors.IsNotFound(err) {
		r.mu.Lock()
		delete(r.finished, pod.UID)
		r.mu.Unlock()
		return nil
	}
	return err
}

// terminate reports the container as terminated with code and the pod as Succeeded or Failed, unless the
// pod already ended.
func (r *Runner) terminate(ctx context.Context, pod *corev1.Pod, code int, reason, message string) error {
	now := metav1.Now()
	name := "container"
	if len(pod.Spec.Containers) > 0 {
		name = pod.Spec.Containers[0].Name
	}
	return r.updateStatus(ctx, pod, func(p *corev1.Pod) bool {
		if isTerminal(p) {
			return false
		}
		p.Status.Phase = corev1.PodFailed
		if code == 0 {
			p.Status.Phase = corev1.PodSucceeded
		}
		if p.Status.StartTime == nil {
			p.Status.StartTime = &now
		}
		started := now
		if len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Running != nil {
			started = p.Status.ContainerStatuses[0].State.Running.StartedAt
		}
		p.Status.Conditions = podConditions(false, now)
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: name, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: int32(code), Reason: reason, Message: message, StartedAt: started, FinishedAt: now}}}}
		if code != 0 {
			p.Status.Message = fmt.Sprintf("container %s: %s (exit code %d)", name, reason, code)
			p.Status.Reason = reason
		}
		return true
	})
}

func isTerminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// updateStatus applies mutate to the latest pod and writes its status when mutate reports a change,
// retrying conflicts.
func (r *Runner) updateStatus(ctx context.Context, pod *corev1.Pod, mutate func(*corev1.Pod) bool) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		latest := &corev1.Pod{}
		if err := r.Client.Get(ctx, client.ObjectKeyFromObject(pod), latest); err != nil {
			return err
		}
		if latest.UID != pod.UID {
			return apierrors.NewNotFound(corev1.Resource("pods"), pod.Name)
		}
		if !mutate(latest) {
			return nil
		}
		return r.Client.Status().Update(ctx, latest)
	})
}

// ensureNode creates the runner's Node, Ready, once.
func (r *Runner) ensureNode(ctx context.Context) error {
	r.mu.Lock()
	done := r.nodeDone
	r.mu.Unlock()
	if done {
		return nil
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: r.Opts.NodeName, Labels: map[string]string{
		"kubernetes.io/hostname": r.Opts.NodeName, "kubernetes.io/os": "linux", "imagemode.io/local-pod-runner": "",
	}}}
	// Create fills node from the server's answer; only an existing node (a restarted runner) is read.
	if err := r.Client.Create(ctx, node); apierrors.IsAlreadyExists(err) {
		if err := r.Client.Get(ctx, client.ObjectKeyFromObject(node), node); err != nil {
			return err
		}
	} else if err != nil {
		return fmt.Errorf("creating runner node %s: %w", r.Opts.NodeName, err)
	}
	now := metav1.Now()
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "PodRunnerReady",
		Message: "the local pod runner runs pods as processes", LastHeartbeatTime: now, LastTransitionTime: now}}
	if err := r.Client.Status().Update(ctx, node); err != nil {
		return fmt.Errorf("marking runner node %s ready: %w", r.Opts.NodeName, err)
	}
	r.mu.Lock()
	r.nodeDone = true
	r.mu.Unlock()
	return nil
}

// Stop kills every running process (the runner is going away; their pods will be found Running without a
// process and failed on the next start).
func (r *Runner) Stop() {
	r.mu.Lock()
	procs := make([]*running, 0, len(r.procs))
	for _, p := range r.procs {
		p.stopped = true
		procs = append(procs, p)
	}
	r.mu.Unlock()
	for _, p := range procs {
		_ = p.proc.Stop(2 * time.Second)
	}
}

// SetupWithManager watches the pods the options choose.
func (r *Runner) SetupWithManager(mgr ctrl.Manager) error {
	chosen := predicate.NewPredicateFuncs(func(o client.Object) bool {
		return o.GetNamespace() == r.Opts.Namespace && (r.Opts.Selector == nil || r.Opts.Selector.Matches(labels.Set(o.GetLabels())))
	})
	// ConfigMaps and Secrets are watched as a kubelet watches its pods' volume sources: a pod waiting for
	// one starts as soon as it appears, and the first pod does not wait for the cache to fill.
	inNamespace := predicate.NewPredicateFuncs(func(o client.Object) bool { return o.GetNamespace() == r.Opts.Namespace })
	// The Node is registered when the runner starts, as a kubelet does, not when the first pod comes.
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		if err := r.ensureNode(ctx); err != nil {
			log.FromContext(ctx).Error(err, "registering the runner's node (retried with the first pod)")
		}
		return nil
	})); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("local-pod-runner").
		For(&corev1.Pod{}, builder.WithPredicates(chosen)).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(r.podsWaitingFor), builder.WithPredicates(inNamespace)).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.podsWaitingFor), builder.WithPredicates(inNamespace)).
		Complete(r)
}

// podsWaitingFor maps a ConfigMap or Secret to the pending pods of the runner that use it as a volume.
func (r *Runner) podsWaitingFor(ctx context.Context, obj client.Object) []reconcile.Request {
	var pods corev1.PodList
	opts := []client.ListOption{client.InNamespace(obj.GetNamespace())}
	if r.Opts.Selector != nil {
		opts = append(opts, client.MatchingLabelsSelector{Selector: r.Opts.Selector})
	}
	if err := r.Client.List(ctx, &pods, opts...); err != nil {
		log.FromContext(ctx).Error(err, "listing pods waiting for a volume")
		return nil
	}
	_, secret := obj.(*corev1.Secret)
	var out []reconcile.Request
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodPending && p.Status.Phase != "" {
			continue
		}
		for _, v := range p.Spec.Volumes {
			if (secret && v.Secret != nil && v.Secret.SecretName == obj.GetName()) ||
				(!secret && v.ConfigMap != nil && v.ConfigMap.Name == obj.GetName()) {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: p.Namespace, Name: p.Name}})
				break
			}
		}
	}
	return out
}

func podConditions(ready bool, now metav1.Time) []corev1.PodCondition {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: status, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: status, LastTransitionTime: now},
	}
}

// logTail returns the last n bytes of a log file.
func logTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := st.Size() - n
	if off < 0 {
		off = 0
	}
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return ""
	}
	return string(buf)
}

func ptrTo[T any](v T) *T { return &v }
