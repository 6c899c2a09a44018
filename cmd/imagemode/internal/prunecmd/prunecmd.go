package prunecmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/render/prune"
)

// ClientFunc returns the API client a command uses. Commands call it when they run, after the flags
// (--kubeconfig among them) are parsed.
type ClientFunc func() (client.Client, error)

// outputJSON is the only value --output accepts; empty prints the reference's text.
const outputJSON = "json"

// NewCommand returns `prune`, the parent of the pruning commands.
func NewCommand(newClient ClientFunc) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Delete objects nobody uses any more",
		// Runnable only so that an unknown subcommand is an error rather than help and success.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(NewRenderedMachineConfigsCommand(newClient))
	cmd.AddCommand(NewImagesCommand(newClient))
	return cmd
}

type pruneFlags struct {
	pool    string
	count   int
	confirm bool
	output  string
}

// NewRenderedMachineConfigsCommand returns `prune renderedmachineconfigs` with its `list` subcommand.
func NewRenderedMachineConfigsCommand(newClient ClientFunc) *cobra.Command {
	var f pruneFlags
	cmd := &cobra.Command{
		Use:   "renderedmachineconfigs",
		Short: "Delete rendered MachineConfigs nothing uses (dry run unless --confirm)",
		Long: "renderedmachineconfigs deletes the rendered MachineConfigs (rendered-<pool>-<hash>) that no pool, node,\n" +
			"MachineOSBuild or MachineConfigNode references, oldest first. Without --confirm it only says what it would\n" +
			"delete (the API server checks each deletion in dry-run mode).",
		Example: "  # See what would be deleted\n  imagemode prune renderedmachineconfigs\n\n" +
			"  # Delete the 10 oldest unused rendered MachineConfigs of the worker pool\n" +
			"  imagemode prune renderedmachineconfigs --pool-name=worker --count=10 --confirm\n\n" +
			"  # Show why each rendered MachineConfig is or is not in use\n  imagemode prune renderedmachineconfigs -o json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(f.output); err != nil {
				return err
			}
			c, err := newClient()
			if err != nil {
				return err
			}
			return runPrune(cmd.Context(), c, cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	cmd.Flags().StringVarP(&f.pool, "pool-name", "p", "", "only prune the rendered MachineConfigs of this MachineConfigPool (default: all pools)")
	cmd.Flags().IntVar(&f.count, "count", 0, "most rendered MachineConfigs to delete, oldest first (default: every unused one)")
	cmd.Flags().BoolVar(&f.confirm, "confirm", false, "delete; without it, only show what would be deleted")
	cmd.Flags().StringVarP(&f.output, "output", "o", "", "output format: json (default: the text oc prints)")
	cmd.AddCommand(newListCommand(newClient))
	return cmd
}

type listFlags struct {
	pool   string
	inUse  bool
	output string
}

func newListCommand(newClient ClientFunc) *cobra.Command {
	var f listFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List rendered MachineConfigs and whether they are in use",
		Example: "  # List the rendered MachineConfigs of the worker pool\n  imagemode prune renderedmachineconfigs list --pool-name=worker\n\n" +
			"  # Show each pool's current rendered MachineConfigs\n  imagemode prune renderedmachineconfigs list --in-use",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(f.output); err != nil {
				return err
			}
			c, err := newClient()
			if err != nil {
				return err
			}
			return runList(cmd.Context(), c, cmd.OutOrStdout(), f)
		},
	}
	cmd.Flags().StringVarP(&f.pool, "pool-name", "p", "", "only list this MachineConfigPool's (default: all pools)")
	cmd.Flags().BoolVar(&f.inUse, "in-use", false, "list each pool's spec and status rendered MachineConfig instead")
	cmd.Flags().StringVarP(&f.output, "output", "o", "", "output format: json (default: the text oc prints)")
	return cmd
}

func checkOutput(output string) error {
	if output != "" && output != outputJSON {
		return fmt.Errorf("unsupported output format %q (allowed: %s)", output, outputJSON)
	}
	return nil
}

// runPrune loads the inventory, plans and carries out the plan: in order, it reports each skip and deletes
// (or dry-run deletes) each unused config, reporting it once the API server accepted it. A failed
// deletion does not stop the others; the errors are returned together.
func runPrune(ctx context.Context, c client.Client, out, errOut io.Writer, f pruneFlags) error {
	inv, err := LoadInventory(ctx, c)
	if err != nil {
		return err
	}
	plan, err := prune.NewPlan(inv, prune.Options{PoolName: f.pool, Count: f.count})
	if err != nil {
		return err
	}
	dryRun := !f.confirm
	asJSON := f.output == outputJSON
	report := prune.NewPruneReport(plan, dryRun)
	if dryRun && !asJSON {
		fmt.Fprintln(errOut, prune.DryRunNotice)
	}
	var errs []error
	for i, a := range plan.Actions {
		if a.Verdict == prune.Skip && !asJSON {
			fmt.Fprintln(errOut, a.Message(dryRun))
		}
		if a.Verdict != prune.Delete {
			continue
		}
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("pruning rendered MachineConfigs: %w", err))
			break
		}
		result, err := deleteConfig(ctx, c, a.Candidate, dryRun)
		report.Items[i].Result = result
		if err != nil {
			report.Items[i].Error = err.Error()
			errs = append(errs, err)
			continue
		}
		if !asJSON {
			fmt.Fprintln(out, a.Message(dryRun))
		}
	}
	if asJSON {
		if err := writeJSON(out, report); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deleteConfig deletes one candidate, on condition that it is still the object that was inspected (same
// UID). A config that is already gone is not an error.
func deleteConfig(ctx context.Context, c client.Client, cand prune.Candidate, dryRun bool) (prune.Result, error) {
	var opts []client.DeleteOption
	if cand.UID != "" {
		opts = append(opts, client.Preconditions{UID: &cand.UID})
	}
	verb, result := "deleting", prune.Deleted
	if dryRun {
		opts = append(opts, client.DryRunAll)
		verb, result = "dry-run deleting", prune.DryRunDeleted
	}
	err := c.Delete(ctx, &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: cand.Name}}, opts...)
	switch {
	case err == nil:
		return result, nil
	case apierrors.IsNotFound(err):
		return prune.AlreadyGone, nil
	default:
		return prune.Failed, fmt.Errorf("%s rendered MachineConfig %s: %w", verb, cand.Name, err)
	}
}

func runList(ctx context.Context, c client.Client, out io.Writer, f listFlags) error {
	inv, err := LoadInventory(ctx, c)
	if err != nil {
		return err
	}
	if f.inUse {
		pools, err := prune.PoolConfigs(inv, f.pool)
		if err != nil {
			return err
		}
		if f.output == outputJSON {
			return writeJSON(out, prune.NewPoolsReport(pools))
		}
		_, err = io.WriteString(out, prune.FormatPoolConfigs(pools))
		return err
	}
	cands, err := prune.List(inv, f.pool)
	if err != nil {
		return err
	}
	if f.output == outputJSON {
		return writeJSON(out, prune.NewListReport(cands))
	}
	_, err = io.WriteString(out, prune.FormatList(cands))
	return err
}

func writeJSON(out io.Writer, doc any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "    ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("writing JSON output: %w", err)
	}
	return nil
}
