// Command imagemode is imagemode's user CLI, in the style of kubectl and `oc adm`: it talks to the cluster
// named by --kubeconfig, $KUBECONFIG or ~/.kube/config. This file only wires the commands; each lives in
// its own package under internal/.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"time"

	"github.com/spf13/cobra"

	"github.com/imagemode/imagemode/cmd/imagemode/internal/buildscmd"
	"github.com/imagemode/imagemode/cmd/imagemode/internal/clients"
	"github.com/imagemode/imagemode/cmd/imagemode/internal/kubeclient"
	"github.com/imagemode/imagemode/cmd/imagemode/internal/plancmd"
	"github.com/imagemode/imagemode/cmd/imagemode/internal/prunecmd"
	"github.com/imagemode/imagemode/cmd/imagemode/internal/rebuildcmd"
	"github.com/imagemode/imagemode/cmd/imagemode/internal/rolloutcmd"
	"github.com/imagemode/imagemode/cmd/imagemode/internal/statuscmd"
	"github.com/imagemode/imagemode/cmd/imagemode/internal/verifycmd"
	"github.com/imagemode/imagemode/cmd/imagemode/internal/versioncmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	kube := &kubeclient.Options{}
	root := &cobra.Command{
		Use:          "imagemode",
		Short:        "Manage on-cluster OS image layering and MachineConfigs",
		SilenceUsage: true,
	}
	root.PersistentFlags().StringVar(&kube.Kubeconfig, "kubeconfig", "",
		"path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
	root.AddCommand(prunecmd.NewCommand(kube.Client))
	root.AddCommand(plancmd.NewCommand(plancmd.ReaderFromOptions(kube)))
	newClients := clients.FromOptions(kube)
	root.AddCommand(
		statuscmd.NewCommand(newClients, time.Now),
		buildscmd.NewCommand(newClients, buildscmd.Options{Now: time.Now}),
		rebuildcmd.NewCommand(newClients),
		rolloutcmd.NewCommand(newClients),
		versioncmd.NewCommand(newClients),
		verifycmd.NewCommand(),
	)
	return root
}
