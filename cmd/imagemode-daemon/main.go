// Command imagemode-daemon is the node agent (a DaemonSet on real rpm-ostree hosts): it applies its node's
// desired MachineConfig and OS image and reports the node's state. The host is reached through --root (the
// host's / mounted into the container, /rootfs in the DaemonSet): files are written under it, and rpm-ostree
// and systemctl run chrooted into it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2/textlogger"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/imagemode/imagemode/daemon"
	"github.com/imagemode/imagemode/daemon/agent"
	"github.com/imagemode/imagemode/daemon/simhost"
	"github.com/imagemode/imagemode/internal/version"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/registry/signing"
)

func main() {
	if err := newCommand().Execute(); err != nil {
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	var nodeName, root, metricsAddr, simulated string
	var verbosity int
	cmd := &cobra.Command{
		Use:          "imagemode-daemon",
		Short:        "Run the node agent of --node-name against the cluster in $KUBECONFIG",
		Version:      version.Get(),
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctrl.SetLogger(textlogger.NewLogger(textlogger.NewConfig(textlogger.Verbosity(verbosity))))
			if nodeName == "" {
				return fmt.Errorf("--node-name (or $NODE_NAME) is required")
			}
			restCfg, err := ctrl.GetConfig()
			if err != nil {
				return fmt.Errorf("loading kubeconfig: %w", err)
			}
			if simulated != "" {
				return runSimulated(ctrl.SetupSignalHandler(), restCfg, nodeName, simulated)
			}
			mgr, err := agent.NewManager(restCfg, nodeName, metricsAddr)
			if err != nil {
				return err
			}
			m, err := agent.NewMetrics(metrics.Registry)
			if err != nil {
				return err
			}
			h, err := newHost(cmd.Context(), root)
			if err != nil {
				return err
			}
			a, err := agent.New(mgr.GetClient(), mgr.GetEventRecorder("machineconfigdaemon"), agent.Options{
				NodeName: nodeName, Host: h, Metrics: m,
				TrustedKeys: &signing.ConfigMapKeys{Reader: mgr.GetAPIReader(), Namespace: wellknown.MCONamespace}})
			if err != nil {
				return err
			}
			if err := a.SetupWithManager(mgr); err != nil {
				return err
			}
			return mgr.Start(ctrl.SetupSignalHandler())
		},
	}
	cmd.Flags().StringVar(&nodeName, "node-name", os.Getenv("NODE_NAME"), "the node this daemon runs on")
	cmd.Flags().StringVar(&root, "root-mount", "/rootfs", "where the host's / is mounted")
	cmd.Flags().StringVar(&metricsAddr, "metrics-bind-address", "127.0.0.1:8797", "address of the Prometheus metrics endpoint (0 disables it)")
	cmd.Flags().StringVar(&simulated, "simulated-host", "", "run against the directory-backed simulated host at this path (daemon/simhost) instead of the host at --root-mount, "+
		"for trying the system on nodes that are not rpm-ostree hosts; its reboots boot the staged deployment and restart the agent")
	cmd.Flags().IntVarP(&verbosity, "v", "v", 0, "log verbosity")
	cmd.Flags().AddGoFlagSet(flag.CommandLine)
	return cmd
}

// host is a real rpm-ostree host seen from the daemon's container.
type host struct {
	root daemon.Root
	os   daemon.OSUpdater
	sd   daemon.Systemd
}

// newHost returns the host under root, with rpm-ostree or bootc as its image tool, whichever it has.
func newHost(ctx context.Context, root string) (*host, error) {
	runner := chrootRunner{root: root}
	osu, err := daemon.DetectOSUpdater(ctx, runner, daemon.Root(root))
	if err != nil {
		return nil, err
	}
	return &host{root: daemon.Root(root), os: osu, sd: &daemon.Systemctl{Runner: runner}}, nil
}

func (h *host) Root() daemon.Root { return h.root }
func (h *host) Commands() daemon.CommandRunner {
	return chrootRunner{root: string(h.root)}
}
func (h *host) OS() daemon.OSUpdater    { return h.os }
func (h *host) Systemd() daemon.Systemd { return h.sd }
func (h *host) BootID() (string, error) {
	data, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(data)), err
}

// chrootRunner runs host commands chrooted into the host's root (directly when it is "/").
type chrootRunner struct{ root string }

func (r chrootRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	if r.root == "/" || r.root == "" {
		return daemon.ExecRunner{}.Run(ctx, name, args...)
	}
	return daemon.ExecRunner{}.Run(ctx, "chroot", append([]string{r.root, name}, args...)...)
}

// runSimulated runs the agent of nodeName against the simulated host at dir until ctx ends. A reboot the
// agent queues stops it, as a real reboot kills the daemon; the host then boots its staged deployment
// (a new boot ID, the image's /usr in place) and the agent starts again, as the DaemonSet's pod does after
// a real reboot. The host must have been provisioned (simhost.Host.Provision and a first boot).
func runSimulated(ctx context.Context, cfg *rest.Config, nodeName, dir string) error {
	m, err := agent.NewMetrics(metrics.Registry)
	if err != nil {
		return err
	}
	for {
		runCtx, cancel := context.WithCancel(ctx)
		var rebooted atomic.Bool
		h, err := simhost.New(dir, simhost.Options{OnReboot: func(string) { rebooted.Store(true); cancel() }})
		if err != nil {
			cancel()
			return err
		}
		err = agent.Run(runCtx, cfg, agent.Options{NodeName: nodeName, Host: h, Metrics: m}, nil)
		cancel()
		if !rebooted.Load() {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		ctrl.Log.Info("rebooting the simulated host", "node", nodeName, "host", dir)
		if err := h.Boot(); err != nil {
			return fmt.Errorf("booting simulated host %s: %w", dir, err)
		}
	}
}
