// Package simnode runs simulated nodes: a Node object (kept Ready, since no kubelet exists here), a
// simulated host (daemon/simhost; by default on a real OSTree sysroot) provisioned with the cluster's base OS image from the registry,
// and the node agent (daemon/agent) running in-process. A reboot the agent queues stops it, as a real reboot
// kills the daemon; the node then boots its staged deployment and starts the agent again. Tests and the
// embedded local default use it; the agent code is the same as the daemon binary's.
package simnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/daemon"
	"github.com/imagemode/imagemode/daemon/agent"
	"github.com/imagemode/imagemode/daemon/simhost"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/render/rollout"
)

// Options describes a simulated node.
type Options struct {
	// Name is the Node's name.
	Name string
	// Dir holds the node's host (its root and simulated OS state); reusing it reuses the host.
	Dir string
	// Labels are the Node's labels (pool membership: node-role.kubernetes.io/<pool>).
	Labels map[string]string
	// BaseImage is the OS image (repo@sha256:…) a new host is provisioned with.
	BaseImage string
	// AuthJSON is the node's pull secret (written to /var/lib/kubelet/config.json).
	AuthJSON []byte
	// CAs are the registry CAs the node trusts, by "host..port" (as in a ControllerConfig).
	CAs map[string][]byte
	// Logger receives the agent's logs (discarded when zero).
	Logger logr.Logger
	// WrapHost, when set, wraps the host the agent sees (tests inject faults with it).
	WrapHost func(daemon.Host) daemon.Host
	// Registry, when set, receives the node's mcd_* metrics (registered once, kept across the agent's
	// restarts and reboots); give each node its own registry.
	Registry prometheus.Registerer
	// Backend is how the host keeps its OS (simhost.BackendOSTree, a real OSTree sysroot, or
	// simhost.BackendDirectory); empty means $IMAGEMODE_NODE_BACKEND, else DefaultBackend.
	Backend simhost.Backend
}

// DefaultBackend is the host backend of simulated nodes: real OSTree deployments.
const DefaultBackend = simhost.BackendOSTree

// BackendEnv names the environment variable that selects the backend of nodes whose Options leave it
// empty ("ostree" or "directory").
const BackendEnv = "IMAGEMODE_NODE_BACKEND"

// backend returns the backend a node uses.
func (o Options) backend() simhost.Backend {
	if o.Backend != "" {
		return o.Backend
	}
	if b := os.Getenv(BackendEnv); b != "" {
		return simhost.Backend(b)
	}
	return DefaultBackend
}

// Node is a running simulated node.
type Node struct {
	opts    Options
	metrics *agent.Metrics
	cfg     *rest.Config
	c       client.Client
	Host    *simhost.Host

	// firstConfig is the config a new host was installed with ("" for a host that existed).
	firstConfig string

	mu      sync.Mutex
	cancel  context.CancelFunc // stops the current agent run
	reboot  bool               // the current run ended in a reboot
	reboots int
	done    chan struct{}
	err     error
}

// Start creates (or reuses) the Node object and the host, provisions the host when new, and starts the
// agent. It returns once the agent runs; Stop ends it.
func Start(ctx context.Context, cfg *rest.Config, c client.Client, opts Options) (*Node, error) {
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	n := &Node{opts: opts, cfg: cfg, c: c, done: make(chan struct{})}
	if opts.Registry != nil {
		m, err := agent.NewMetrics(opts.Registry)
		if err != nil {
			return nil, fmt.Errorf("node %s: registering its metrics: %w", opts.Name, err)
		}
		n.metrics = m
	}
	host, err := simhost.New(filepath.Join(opts.Dir), simhost.Options{OnReboot: n.onReboot, Backend: opts.backend()})
	if err != nil {
		return nil, err
	}
	n.Host = host
	if err := host.Provision(ctx, opts.BaseImage, opts.AuthJSON, opts.CAs); err != nil {
		return nil, fmt.Errorf("node %s: %w", opts.Name, err)
	}
	if err := n.firstBoot(ctx); err != nil {
		return nil, err
	}
	if err := n.ensureNode(ctx); err != nil {
		return nil, err
	}
	go n.loop(ctx)
	return n, nil
}

// firstBoot does for a new host what the machine config server and Ignition do at installation (FirstBoot),
// and gives the new Node the annotations of a node that finished its first boot on it.
func (n *Node) firstBoot(ctx context.Context) error {
	name, err := FirstBoot(ctx, n.c, n.Host, n.opts.Name, n.opts.Labels)
	n.firstConfig = name
	return err
}

// FirstBootAnnotations are the annotations of a Node that finished its first boot on config: currentConfig
// = desiredConfig = config, state Done.
func FirstBootAnnotations(config string) map[string]string {
	return map[string]string{
		wellknown.CurrentConfigAnnotation:    config,
		wellknown.DesiredConfigAnnotation:    config,
		wellknown.FirstPivotConfigAnnotation: config,
		wellknown.StateAnnotation:            wellknown.NodeStateDone,
	}
}

// FirstBoot does for a new (provisioned) host what the machine config server and Ignition do at
// installation: it writes the current rendered config of the primary pool of a node named name with labels
// to the host and records it on disk. It returns that config's name; a host that already has an on-disk
// config is left as it is ("" returned). The caller gives the Node FirstBootAnnotations.
func FirstBoot(ctx context.Context, c client.Client, host *simhost.Host, name string, labels map[string]string) (string, error) {
	store := agent.Store{Root: host.Root()}
	if cur, err := store.CurrentConfig(); err != nil || cur != nil {
		return "", err
	}
	var pools mcfgv1.MachineConfigPoolList
	var primary *mcfgv1.MachineConfigPool
	probe := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := c.List(ctx, &pools); err != nil {
			return false, err
		}
		ptrs := make([]*mcfgv1.MachineConfigPool, len(pools.Items))
		for i := range pools.Items {
			ptrs[i] = &pools.Items[i]
		}
		found, err := rollout.PoolsForNode(probe, ptrs)
		if err != nil || len(found) == 0 {
			return false, err
		}
		primary = found[0]
		return primary.Spec.Configuration.Name != "", nil
	})
	if err != nil {
		return "", fmt.Errorf("node %s: waiting for its pool's rendered config: %w", name, err)
	}
	mc := &mcfgv1.MachineConfig{}
	if err := c.Get(ctx, client.ObjectKey{Name: primary.Spec.Configuration.Name}, mc); err != nil {
		return "", fmt.Errorf("node %s: %w", name, err)
	}
	if err := daemon.ApplyConfig(ctx, host.Root(), host.Systemd(), nil, mc, daemon.ApplyOptions{}); err != nil {
		return "", fmt.Errorf("node %s: first boot: %w", name, err)
	}
	if err := store.SetCurrent(mc, ""); err != nil {
		return "", err
	}
	return mc.Name, nil
}

// ensureNode creates the Node with its labels and marks it Ready (no kubelet does here).
func (n *Node) ensureNode(ctx context.Context) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.opts.Name, Labels: n.opts.Labels}}
	if n.firstConfig != "" {
		node.Annotations = FirstBootAnnotations(n.firstConfig)
	}
	if err := n.c.Create(ctx, node); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating node %s: %w", n.opts.Name, err)
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := n.c.Get(ctx, client.ObjectKeyFromObject(node), node); err != nil {
			return err
		}
		now := metav1.Now()
		node.Status.Conditions = []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "simulated node",
				LastHeartbeatTime: now, LastTransitionTime: now},
		}
		node.Status.NodeInfo.OperatingSystem, node.Status.NodeInfo.Architecture = "linux", "amd64"
		return n.c.Status().Update(ctx, node)
	})
	if err != nil {
		return fmt.Errorf("marking node %s ready: %w", n.opts.Name, err)
	}
	return nil
}

func (n *Node) onReboot(string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.reboot = true
	if n.cancel != nil {
		n.cancel()
	}
}

// loop runs the agent; after a queued reboot it boots the host and runs the agent again.
func (n *Node) loop(ctx context.Context) {
	defer close(n.done)
	for ctx.Err() == nil {
		runCtx, cancel := context.WithCancel(ctx)
		n.mu.Lock()
		n.cancel, n.reboot = cancel, false
		n.mu.Unlock()
		var host daemon.Host = n.Host
		if n.opts.WrapHost != nil {
			host = n.opts.WrapHost(host)
		}
		err := agent.Run(ctrl.LoggerInto(runCtx, n.opts.Logger.WithValues("node", n.opts.Name)), n.cfg,
			agent.Options{NodeName: n.opts.Name, Host: host, Metrics: n.metrics}, nil)
		cancel()
		n.mu.Lock()
		rebooted := n.reboot
		n.mu.Unlock()
		if err != nil && !errors.Is(err, context.Canceled) {
			n.setErr(fmt.Errorf("node %s: daemon: %w", n.opts.Name, err))
			return
		}
		if !rebooted {
			// Stopped (Stop or Restart): a restart starts a new run unless ctx ended.
			if n.stopping() {
				return
			}
			continue
		}
		if err := n.Host.Boot(); err != nil {
			n.setErr(fmt.Errorf("node %s: booting: %w", n.opts.Name, err))
			return
		}
		n.mu.Lock()
		n.reboots++
		n.mu.Unlock()
	}
}

var errStopped = errors.New("stopped")

func (n *Node) stopping() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return errors.Is(n.err, errStopped)
}

func (n *Node) setErr(err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.err == nil {
		n.err = err
	}
}

// RestartDaemon kills the agent (as if its process died) and starts it again, without a reboot.
func (n *Node) RestartDaemon() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cancel != nil {
		n.cancel()
	}
}

// Reboots returns how many times the node rebooted.
func (n *Node) Reboots() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.reboots
}

// Name returns the node's name.
func (n *Node) Name() string { return n.opts.Name }

// Stop stops the agent and waits for it; it returns the error that ended the node early, if any.
func (n *Node) Stop() error {
	n.setErr(errStopped)
	n.mu.Lock()
	if n.cancel != nil {
		n.cancel()
	}
	n.mu.Unlock()
	<-n.done
	n.mu.Lock()
	defer n.mu.Unlock()
	if errors.Is(n.err, errStopped) {
		return nil
	}
	return n.err
}

// Err returns the error that stopped the node early (nil while it runs or after a clean Stop).
func (n *Node) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if errors.Is(n.err, errStopped) {
		return nil
	}
	return n.err
}
