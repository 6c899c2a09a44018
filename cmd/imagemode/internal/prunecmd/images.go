package prunecmd

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/registry/gc"
)

// ImagesDryRunNotice is printed on standard error before a dry run of `prune images`.
const ImagesDryRunNotice = "Dry run enabled - no modifications will be made. Add --confirm to remove images."

// defaultControllerConfig is the ControllerConfig whose registry CAs and proxy the command uses.
const defaultControllerConfig = "machine-config-controller"

type imagesFlags struct {
	confirm          bool
	output           string
	namespace        string
	controllerConfig string
	retainBuilds     int
	scanRegistry     bool
}

// ImagesReport is the JSON output of `prune images`.
type ImagesReport struct {
	DryRun bool `json:"dryRun"`
	// BytesFreed sums the sizes of the images deleted (0 in a dry run).
	BytesFreed int64     `json:"bytesFreed"`
	Images     []gc.Item `json:"images"`
	Warnings   []string  `json:"warnings,omitempty"`
}

// NewImagesCommand returns `prune images`.
func NewImagesCommand(newClient ClientFunc) *cobra.Command {
	var f imagesFlags
	cmd := &cobra.Command{
		Use:   "images",
		Short: "Delete the layered images nobody uses (dry run unless --confirm)",
		Long: "images lists, for each MachineOSConfig, every image the build service pushed — from MachineOSBuilds,\n" +
			"from pending deletions (tombstones) and, with --scan-registry, from the <machineosconfig>-* tags of its\n" +
			"repository — with what uses it: nodes' current/desired images (all pools), MachineOSConfigs' current\n" +
			"images, other MachineOSBuilds with the same digest, MachineConfigs' osImageURL, and the retention (the\n" +
			"current build plus the newest successful ones, " + wellknown.RetainBuildsAnnotation + "). With --confirm\n" +
			"it deletes the unused ones by digest, and their MachineOSBuilds, digest ConfigMaps and tombstones.",
		Example: "  # See every image and why it is kept\n  imagemode prune images\n\n" +
			"  # Delete the unused ones\n  imagemode prune images --confirm\n\n  # For scripts\n  imagemode prune images -o json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(f.output); err != nil {
				return err
			}
			c, err := newClient()
			if err != nil {
				return err
			}
			return runImages(cmd.Context(), c, cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	cmd.Flags().BoolVar(&f.confirm, "confirm", false, "delete; without it, only show what would be deleted")
	cmd.Flags().StringVarP(&f.output, "output", "o", "", "output format: json (default: a table)")
	cmd.Flags().StringVarP(&f.namespace, "namespace", "n", wellknown.MCONamespace, "namespace of the push secrets, digest ConfigMaps and tombstones")
	cmd.Flags().StringVar(&f.controllerConfig, "controller-config", defaultControllerConfig, "ControllerConfig with the registry CAs and proxy")
	cmd.Flags().IntVar(&f.retainBuilds, "retain-builds", -1, "successful builds kept per MachineOSConfig besides the current one, unless its annotation says otherwise (default 3)")
	cmd.Flags().BoolVar(&f.scanRegistry, "scan-registry", true, "also list the <machineosconfig>-* tags of each MachineOSConfig's repository")
	return cmd
}

func runImages(ctx context.Context, c client.Client, out, errOut io.Writer, f imagesFlags) error {
	opts := gc.ListOptions{Namespace: f.namespace, ControllerConfigName: f.controllerConfig, Keep: f.retainBuilds, ScanRegistry: f.scanRegistry}
	items, warnings, err := gc.ListImages(ctx, c, opts)
	if err != nil {
		return err
	}
	asJSON := f.output == outputJSON
	if !asJSON {
		if !f.confirm {
			fmt.Fprintln(errOut, ImagesDryRunNotice)
		}
		for _, w := range warnings {
			fmt.Fprintln(errOut, "warning:", w)
		}
	}
	var execErr error
	if f.confirm {
		execErr = gc.Execute(ctx, c, items, opts)
	}
	report := ImagesReport{DryRun: !f.confirm, Images: items, Warnings: warnings}
	for _, it := range items {
		if it.Action == gc.ActionDeleted {
			report.BytesFreed += it.Size
		}
	}
	if asJSON {
		if err := writeJSON(out, report); err != nil {
			return err
		}
		return execErr
	}
	if _, err := io.WriteString(out, FormatImages(report)); err != nil {
		return err
	}
	return execErr
}

// FormatImages renders the report as a table, one image per row, then a summary line.
func FormatImages(r ImagesReport) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "MACHINEOSCONFIG\tBUILD\tIMAGE\tSIZE\tIN USE BY\tACTION")
	var deletable, freed int64
	var n int
	for _, it := range r.Images {
		inUse := strings.Join(it.InUseBy, ",")
		if inUse == "" {
			inUse = "-"
		}
		build := it.Build
		switch it.Source {
		case gc.SourceTombstone:
			build += " (deleted)"
		case gc.SourceRegistryTag:
			build += " (tag only)"
		}
		action := it.Action
		switch {
		case it.Action == gc.ActionDelete && r.DryRun:
			action = "would delete"
		case it.Action == gc.ActionFailed:
			action = "failed: " + it.Error
		}
		if it.Action == gc.ActionDelete || it.Action == gc.ActionDeleted {
			deletable += it.Size
			n++
		}
		if it.Action == gc.ActionDeleted {
			freed += it.Size
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", it.MachineOSConfig, build, it.Image, humanSize(it.Size), inUse, action)
	}
	_ = w.Flush()
	if r.DryRun {
		fmt.Fprintf(&b, "%d of %d images would be deleted (%s)\n", n, len(r.Images), humanSize(deletable))
	} else {
		fmt.Fprintf(&b, "%d of %d images deleted (%s freed)\n", n, len(r.Images), humanSize(freed))
	}
	return b.String()
}

// humanSize renders bytes in binary units with one decimal ("-" when unknown).
func humanSize(n int64) string {
	if n <= 0 {
		return "-"
	}
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
