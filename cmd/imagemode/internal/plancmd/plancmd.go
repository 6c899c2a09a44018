package plancmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/cmd/imagemode/internal/kubeclient"
	"github.com/imagemode/imagemode/cmd/imagemode/internal/printers"
	"github.com/imagemode/imagemode/internal/scheme"
	"github.com/imagemode/imagemode/internal/version"
)

// ReaderFunc returns the client live mode reads the cluster with; it is called only in live mode.
type ReaderFunc func() (client.Reader, error)

// ReaderFromOptions returns a ReaderFunc for the root command's connection flags, with a scheme that knows
// every kind a plan reads (internal/scheme).
func ReaderFromOptions(o *kubeclient.Options) ReaderFunc {
	return func() (client.Reader, error) {
		cfg, err := o.RESTConfig()
		if err != nil {
			return nil, err
		}
		c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
		if err != nil {
			return nil, fmt.Errorf("creating API client for %s: %w", cfg.Host, err)
		}
		return c, nil
	}
}

type flags struct {
	file    string
	offline string
	delete  bool
	all     bool
	output  string
}

// NewCommand returns `plan`.
func NewCommand(newReader ReaderFunc) *cobra.Command {
	var f flags
	cmd := &cobra.Command{
		Use:   "plan -f FILE",
		Short: "Show what a MachineConfig, MachineOSConfig or mirror set change will do to pools and nodes",
		Long: "Show, before a change is applied, each affected pool's new rendered config, whether its layered image\n" +
			"must be rebuilt, and each of its nodes' disruption (Reboot, Drain, Reload or Restart of a service, None),\n" +
			"computed by the same functions the controllers and the node daemon use. Nothing is written.\n\n" +
			"The change is one or more YAML documents: MachineConfig, MachineConfigPool, MachineOSConfig,\n" +
			"ImageContentSourcePolicy, ImageDigestMirrorSet, ImageTagMirrorSet or Image (config.openshift.io). A document\n" +
			"named like an existing object replaces it; --delete plans their removal.\n\n" +
			"The cluster is read with the kubeconfig, or from a folder of YAML files with --offline (which also holds\n" +
			"the Nodes, MachineOSBuilds, the ControllerConfig and MachineConfiguration/cluster); --offline also prints\n" +
			"the new rendered configs.",
		Example: "  # What will this MachineConfig do?\n  imagemode plan -f 99-worker-chrony.yaml\n\n" +
			"  # Removing a mirror set, from a cluster dump, as JSON\n  imagemode plan --delete -f idms.yaml --offline ./cluster -o json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := printers.CheckOutput(f.output, printers.JSON, printers.YAML); err != nil {
				return err
			}
			if f.file == "" {
				return fmt.Errorf("-f FILE is required (- for standard input)")
			}
			change, err := readChange(f.file, cmd.InOrStdin())
			if err != nil {
				return err
			}
			change.Delete = f.delete
			var state *State
			if f.offline != "" {
				state, err = LoadDir(f.offline)
			} else {
				var c client.Reader
				if c, err = newReader(); err == nil {
					state, err = LoadLive(cmd.Context(), c)
				}
			}
			if err != nil {
				return err
			}
			plan, err := Compute(state, change, Options{Rendered: f.offline != "", Version: version.Get()})
			if err != nil {
				return err
			}
			return Write(cmd.OutOrStdout(), plan, f.output, f.all)
		},
	}
	cmd.Flags().StringVarP(&f.file, "filename", "f", "", "the change: a YAML file, - for standard input")
	cmd.Flags().StringVar(&f.offline, "offline", "", "read the cluster from this folder of YAML files instead of the API server; also prints the new rendered configs")
	cmd.Flags().BoolVar(&f.delete, "delete", false, "plan the removal of the file's objects")
	cmd.Flags().BoolVar(&f.all, "all", false, "also list the pools the change does not affect")
	cmd.Flags().StringVarP(&f.output, "output", "o", "", "output format: json or yaml (default: tables)")
	return cmd
}

func readChange(file string, stdin io.Reader) (Change, error) {
	var r io.Reader = stdin
	if file != "-" {
		fh, err := os.Open(file)
		if err != nil {
			return Change{}, fmt.Errorf("reading the change: %w", err)
		}
		defer fh.Close()
		r = fh
	}
	docs, err := ParseChange(file, r)
	return Change{Documents: docs}, err
}

// Write prints the plan: tables (and the new rendered configs' Ignition), or one -o json|yaml document.
// Pools the change does not affect are left out unless all.
func Write(out io.Writer, plan *Plan, output string, all bool) error {
	shown := &Plan{Pools: []PoolPlan{}, RenderedConfigs: plan.RenderedConfigs}
	for _, p := range plan.Pools {
		if p.Affected || all {
			shown.Pools = append(shown.Pools, p)
		}
	}
	if output != "" {
		return printers.Write(out, output, shown)
	}
	return writeTables(out, shown)
}

func writeTables(out io.Writer, plan *Plan) error {
	if len(plan.Pools) == 0 {
		_, err := fmt.Fprintln(out, "No pool is affected by this change.")
		return err
	}
	pools := printers.NewTable("POOL", "CURRENT CONFIG", "NEW CONFIG", "LAYERED", "REASON")
	nodes := printers.NewTable("NODE", "POOL", "CURRENT CONFIG", "ACTIONS", "DRAIN")
	var notes []string
	for _, p := range plan.Pools {
		newConfig := p.NewConfig
		switch {
		case p.RenderError != "":
			newConfig = "<render fails>"
			notes = append(notes, fmt.Sprintf("pool %s cannot be rendered: %s", p.Pool, p.RenderError))
		case !p.ConfigChanged:
			newConfig = "unchanged"
		}
		if p.Paused {
			notes = append(notes, fmt.Sprintf("pool %s is paused: its nodes update once it is unpaused", p.Pool))
		}
		reason := p.Layering.Reason
		if p.Layering.State == LayeringNone && p.Layering.MachineOSConfig == "" && !strings.Contains(reason, "removed") {
			reason = ""
		}
		pools.AddRow(p.Pool, printers.OrNone(p.CurrentConfig), newConfig, p.Layering.State, reason)
		for _, n := range p.Nodes {
			actions, drain := strings.Join(n.Actions, ", "), "no"
			if n.Drain {
				drain = "yes"
			}
			if n.Error != "" {
				actions, drain = n.Error, "-"
			}
			nodes.AddRow(n.Node, p.Pool, printers.OrNone(n.CurrentConfig), actions, drain)
		}
	}
	fmt.Fprintln(out, "Pools:")
	if err := pools.Write(out); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nNodes:")
	if nodes.Len() == 0 {
		fmt.Fprintln(out, "No nodes.")
	} else if err := nodes.Write(out); err != nil {
		return err
	}
	if len(notes) > 0 {
		fmt.Fprintln(out)
		for _, n := range notes {
			fmt.Fprintln(out, "Note: "+n)
		}
	}
	for _, mc := range plan.RenderedConfigs {
		fmt.Fprintf(out, "\nRendered config %s:\n", mc.Name)
		if err := writeSpec(out, mc); err != nil {
			return err
		}
	}
	return nil
}

// writeSpec prints a rendered config: the fields outside Ignition that are set, then its Ignition, indented.
func writeSpec(out io.Writer, mc *mcfgv1.MachineConfig) error {
	s := mc.Spec
	for _, f := range []struct{ name, value string }{
		{"osImageURL", s.OSImageURL},
		{"baseOSExtensionsContainerImage", s.BaseOSExtensionsContainerImage},
		{"kernelType", s.KernelType},
		{"kernelArguments", strings.Join(s.KernelArguments, " ")},
		{"extensions", strings.Join(s.Extensions, " ")},
	} {
		if f.value != "" {
			fmt.Fprintf(out, "%s: %s\n", f.name, f.value)
		}
	}
	if s.FIPS {
		fmt.Fprintln(out, "fips: true")
	}
	var b bytes.Buffer
	if err := json.Indent(&b, s.Config.Raw, "", "  "); err != nil {
		return fmt.Errorf("printing the Ignition of %s: %w", mc.Name, err)
	}
	b.WriteByte('\n')
	_, err := b.WriteTo(out)
	return err
}
