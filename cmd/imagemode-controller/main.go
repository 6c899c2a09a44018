// Command imagemode-controller runs the cluster-side controllers, as package system assembles them:
// rendering of MachineConfigPools, the generated registries configs, node disruption policy status,
// rollout and drain, the build service (MachineOSConfigs and MachineOSBuilds, builds run as Jobs) and the
// registry garbage collector. It only parses flags and builds the manager.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2/textlogger"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/imagemode/imagemode/internal/version"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/system"
)

func main() {
	if err := newCommand().Execute(); err != nil {
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	var metricsAddr, probeAddr, namespace, builderImage, cacheHostPath string
	var leaderElect, buildHostNetwork bool
	var verbosity int
	cmd := &cobra.Command{
		Use:          "imagemode-controller",
		Short:        "Run the render, rollout and build controllers against the cluster in $KUBECONFIG",
		Version:      version.Get(),
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := textlogger.NewConfig(textlogger.Verbosity(verbosity))
			ctrl.SetLogger(textlogger.NewLogger(cfg))
			restCfg, err := ctrl.GetConfig()
			if err != nil {
				return fmt.Errorf("loading kubeconfig: %w", err)
			}
			sys := system.Options{Namespace: namespace, Version: version.Get(), BuilderImage: builderImage, BuildCacheHostPath: cacheHostPath,
				BuildPodsHostNetwork: buildHostNetwork}
			mgr, err := ctrl.NewManager(restCfg, system.ManagerOptions(ctrl.Options{
				Metrics:                metricsserver.Options{BindAddress: metricsAddr},
				HealthProbeBindAddress: probeAddr,
				LeaderElection:         leaderElect,
				LeaderElectionID:       "imagemode-controller",
			}, sys))
			if err != nil {
				return fmt.Errorf("creating manager: %w", err)
			}
			if err := system.AddToManager(mgr, sys); err != nil {
				return err
			}
			if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
				return err
			}
			if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
				return err
			}
			return mgr.Start(ctrl.SetupSignalHandler())
		},
	}
	cmd.Flags().StringVar(&metricsAddr, "metrics-bind-address", "127.0.0.1:8797", "address of the Prometheus metrics endpoint (0 disables it)")
	cmd.Flags().StringVar(&probeAddr, "health-probe-bind-address", ":8081", "address of the health and readiness probes")
	cmd.Flags().StringVar(&namespace, "namespace", wellknown.MCONamespace, "namespace of build Jobs and their ConfigMaps and Secrets")
	cmd.Flags().StringVar(&builderImage, "builder-image", "", "image build pods run (this project's service image, holding imagemode-builder)")
	cmd.Flags().StringVar(&cacheHostPath, "build-cache-host-path", "", "host directory build pods keep their image store in, as a layer cache (empty: none)")
	cmd.Flags().BoolVar(&buildHostNetwork, "build-pods-host-network", false, "run build pods on their node's network (clusters without a pod network)")
	cmd.Flags().BoolVar(&leaderElect, "leader-elect", false, "use leader election, for running more than one replica")
	cmd.Flags().IntVarP(&verbosity, "v", "v", 0, "log verbosity")
	cmd.Flags().AddGoFlagSet(flag.CommandLine)
	return cmd
}
