package buildscmd

import (
	"context"
	"fmt"
	"io"
	"sort"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/cmd/imagemode/internal/clients"
	"github.com/imagemode/imagemode/cmd/imagemode/internal/printers"
	"github.com/imagemode/imagemode/internal/wellknown"
)

// Options are the builds commands' settings.
type Options struct {
	// Namespace holds the build Jobs and the build-log ConfigMaps.
	Namespace string
	// Now is the clock of AGE columns and of relative times.
	Now func() time.Time
}

// NewCommand returns `builds` with list, describe and logs.
func NewCommand(newClients clients.Func, o Options) *cobra.Command {
	if o.Namespace == "" {
		o.Namespace = wellknown.MCONamespace
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	cmd := &cobra.Command{
		Use:     "builds",
		Aliases: []string{"build", "machineosbuilds", "mosb"},
		Short:   "List, describe and show the logs of MachineOSBuilds",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.PersistentFlags().StringVarP(&o.Namespace, "namespace", "n", o.Namespace, "namespace of the build Jobs and logs")
	cmd.AddCommand(newListCommand(newClients, &o), newDescribeCommand(newClients, &o), newLogsCommand(newClients, &o))
	return cmd
}

// Build is a MachineOSBuild's row in `builds list -o json`.
type Build struct {
	Name            string `json:"name"`
	MachineOSConfig string `json:"machineOSConfig"`
	State           string `json:"state"`
	Prepared        string `json:"prepared"`
	Building        string `json:"building"`
	Succeeded       string `json:"succeeded"`
	Interrupted     string `json:"interrupted"`
	Failed          string `json:"failed"`
	Created         string `json:"created"`
	Image           string `json:"image,omitempty"`
}

// BuildList is the document of `builds list -o json`.
type BuildList struct {
	Items []Build `json:"items"`
}

func newListCommand(newClients clients.Func, o *Options) *cobra.Command {
	var mosc, output string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls", "get"},
		Short:   "List MachineOSBuilds with the state columns of `kubectl get machineosbuild`",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := printers.CheckOutput(output, printers.JSON); err != nil {
				return err
			}
			cs, err := newClients()
			if err != nil {
				return err
			}
			return List(cmd.Context(), cs.Client, cmd.OutOrStdout(), cmd.ErrOrStderr(), mosc, output, o.Now())
		},
	}
	cmd.Flags().StringVar(&mosc, "mosc", "", "only the builds of this MachineOSConfig")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json (default: a table)")
	return cmd
}

// List prints the MachineOSBuilds (of one MachineOSConfig when mosc is set) by name, as kubectl orders them. Like kubectl, it
// says on errOut when there are none.
func List(ctx context.Context, c client.Reader, out, errOut io.Writer, mosc, output string, now time.Time) error {
	var list mcfgv1.MachineOSBuildList
	if err := c.List(ctx, &list); err != nil {
		return fmt.Errorf("listing MachineOSBuilds: %w", err)
	}
	builds := []Build{}
	items := list.Items
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	t := printers.NewTable("NAME", "PREPARED", "BUILDING", "SUCCEEDED", "INTERRUPTED", "FAILED", "AGE")
	for _, b := range items {
		if mosc != "" && b.Spec.MachineOSConfig.Name != mosc {
			continue
		}
		cs := b.Status.Conditions
		row := Build{Name: b.Name, MachineOSConfig: b.Spec.MachineOSConfig.Name, State: printers.BuildState(&b),
			Prepared:    printers.ConditionStatus(cs, string(mcfgv1.MachineOSBuildPrepared)),
			Building:    printers.ConditionStatus(cs, string(mcfgv1.MachineOSBuilding)),
			Succeeded:   printers.ConditionStatus(cs, string(mcfgv1.MachineOSBuildSucceeded)),
			Interrupted: printers.ConditionStatus(cs, string(mcfgv1.MachineOSBuildInterrupted)),
			Failed:      printers.ConditionStatus(cs, string(mcfgv1.MachineOSBuildFailed)),
			Created:     printers.Time(&b.CreationTimestamp), Image: string(b.Status.DigestedImagePushSpec)}
		builds = append(builds, row)
		t.AddRow(row.Name, row.Prepared, row.Building, row.Succeeded, row.Interrupted, row.Failed, printers.Age(b.CreationTimestamp, now))
	}
	if output == printers.JSON {
		return printers.Write(out, output, BuildList{Items: builds})
	}
	if len(builds) == 0 {
		_, err := fmt.Fprintln(errOut, "No MachineOSBuilds found.")
		return err
	}
	return t.Write(out)
}
