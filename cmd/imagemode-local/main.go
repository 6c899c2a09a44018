// Command imagemode-local runs the embedded local default: a real control plane, a TLS+auth registry and
// the test base OS image on this machine, and the docs' MachineOSConfig story on them.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/imagemode/imagemode/builder/buildah"
	"github.com/imagemode/imagemode/local"
)

func main() {
	if buildah.Reexec() {
		return
	}
	local.RunBuilderIfRequested() // build pods run by the local pod runner execute this binary
	if err := newRootCommand().Execute(); err != nil {
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "imagemode-local",
		Short:         "Run imagemode on this machine: control plane, registry, base image and the docs' story",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.AddCommand(newDemoCommand())
	return root
}

func newDemoCommand() *cobra.Command {
	var stateDir string
	var keep, verbose bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Bring up the local default and run the docs' MachineOSConfig story, timing each step",
		Long: "demo starts etcd, kube-apiserver and kube-controller-manager, a TLS+auth OCI registry and the test base\n" +
			"OS image, creates the namespace, secrets and pools the docs assume, applies the docs' MachineOSConfig\n" +
			"with kubectl and shows it stored. It stops everything it started at the end, or with --keep stays up\n" +
			"until interrupted. It exits non-zero if any step fails.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDemo(ctx, cmd, stateDir, keep, verbose)
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", filepath.Join(".local", "demo"), "directory for state and logs (emptied first)")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep everything running after the story until interrupted")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "also print the control plane's and registry's logs")
	return cmd
}

func runDemo(ctx context.Context, cmd *cobra.Command, stateDir string, keep, verbose bool) error {
	out := cmd.OutOrStdout()
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(abs); err != nil {
		return fmt.Errorf("emptying state directory: %w", err)
	}
	opts := local.Options{StateDir: abs, DocsRegistry: docsRegistryUsable(ctx)}
	if !opts.DocsRegistry {
		fmt.Fprintf(out, "note: %s:%s does not resolve to 127.0.0.1 or the port is busy: the registry gets a free port and the\n"+
			"docs' push spec is pointed at it (hack/demo.sh adds the /etc/hosts entry)\n\n", local.DocsRegistryHostname, local.DocsRegistryPort)
	}
	if verbose {
		opts.Logs = cmd.ErrOrStderr()
	}
	env, err := local.New(opts)
	if err != nil {
		return err
	}
	steps := &local.Steps{Out: out}
	demoErr := env.Demo(ctx, steps)
	fmt.Fprintln(out)
	steps.Summary()
	if demoErr == nil && keep {
		fmt.Fprintf(out, "\nEverything is running; interrupt (Ctrl-C) to stop it.\n  export KUBECONFIG=%s\n  registry: https://%s (user %s, auth file %s, CA dir %s)\n",
			env.ControlPlane.KubeconfigPath, env.Registry.Host, env.Registry.Username, env.Registry.AuthFile, env.Registry.CertDir)
		<-ctx.Done()
	}
	stopErr := env.Stop()
	if demoErr != nil {
		fmt.Fprintf(out, "\nlogs are in %s\n", abs)
		return demoErr
	}
	if stopErr != nil {
		return fmt.Errorf("stopping: %w", stopErr)
	}
	if err := ctx.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if !keep {
		return os.RemoveAll(abs)
	}
	return nil
}

// docsRegistryUsable reports whether the registry can serve at the docs' push host: the name resolves to
// 127.0.0.1 and the port is free.
func docsRegistryUsable(ctx context.Context) bool {
	addrs, err := net.DefaultResolver.LookupHost(ctx, local.DocsRegistryHostname)
	if err != nil || !slices.Contains(addrs, "127.0.0.1") {
		return false
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+local.DocsRegistryPort)
	if err != nil {
		return false
	}
	return l.Close() == nil
}
