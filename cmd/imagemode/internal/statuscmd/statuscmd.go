package statuscmd

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/cmd/imagemode/internal/clients"
	"github.com/imagemode/imagemode/cmd/imagemode/internal/printers"
	"github.com/imagemode/imagemode/cmd/imagemode/internal/progress"
)

type flags struct {
	output string
	watch  bool
}

// NewCommand returns `status`. now is the clock of the AGE column.
func NewCommand(newClients clients.Func, now func() time.Time) *cobra.Command {
	var f flags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show pools, layered pools (builds and images) and nodes",
		Example: "  # One look at everything\n  imagemode status\n\n" +
			"  # Follow a rollout\n  imagemode status --watch\n\n" +
			"  # The same data for scripts\n  imagemode status -o json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := printers.CheckOutput(f.output, printers.JSON, printers.YAML); err != nil {
				return err
			}
			cs, err := newClients()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.watch {
				return Watch(cmd.Context(), cs.Client, out, f.output, now, progress.IsTerminal(out))
			}
			return Print(cmd.Context(), cs.Client, out, f.output, now)
		},
	}
	cmd.Flags().StringVarP(&f.output, "output", "o", "", "output format: json or yaml (default: tables)")
	cmd.Flags().BoolVarP(&f.watch, "watch", "w", false, "print again whenever a pool, node, MachineOSConfig or MachineOSBuild changes (until Ctrl-C)")
	return cmd
}

// Print loads and prints the status once.
func Print(ctx context.Context, c client.Reader, out io.Writer, output string, now func() time.Time) error {
	text, err := render(ctx, c, output, now)
	if err != nil {
		return err
	}
	_, err = io.WriteString(out, text)
	return err
}

func render(ctx context.Context, c client.Reader, output string, now func() time.Time) (string, error) {
	objs, err := Load(ctx, c)
	if err != nil {
		return "", err
	}
	st := Summarize(objs)
	var b strings.Builder
	if output != "" {
		err = printers.Write(&b, output, st)
	} else {
		err = WriteTables(&b, st, now())
	}
	return b.String(), err
}

// WriteTables prints the status as three tables (pools, layered pools, nodes); a section with no rows says so.
func WriteTables(out io.Writer, st *Status, now time.Time) error {
	pools := printers.NewTable("NAME", "CONFIG", "UPDATED", "UPDATING", "DEGRADED", "MACHINECOUNT", "READYMACHINECOUNT",
		"UPDATEDMACHINECOUNT", "DEGRADEDMACHINECOUNT", "AGE")
	for _, p := range st.Pools {
		pools.AddRow(p.Name, p.Config, p.Updated, p.Updating, p.Degraded, count(p.MachineCount), count(p.ReadyMachineCount),
			count(p.UpdatedMachineCount), count(p.DegradedMachineCount), printers.Age(p.Created, now))
	}
	layered := printers.NewTable("MACHINEOSCONFIG", "POOL", "BUILD", "STATE", "IMAGE")
	for _, l := range st.LayeredPools {
		layered.AddRow(l.MachineOSConfig, l.Pool, printers.OrNone(l.Build), printers.OrNone(l.BuildState), printers.OrNone(printers.ShortImage(l.Image)))
	}
	nodes := printers.NewTable("NAME", "POOLS", "CURRENT CONFIG", "DESIRED CONFIG", "CURRENT IMAGE", "DESIRED IMAGE", "STATE", "REASON")
	for _, n := range st.Nodes {
		nodes.AddRow(n.Name, printers.OrNone(strings.Join(n.Pools, ",")), printers.OrNone(n.CurrentConfig), printers.OrNone(n.DesiredConfig),
			printers.OrNone(printers.ShortImage(n.CurrentImage)), printers.OrNone(printers.ShortImage(n.DesiredImage)),
			printers.OrNone(n.State), oneLine(n.Reason))
	}
	for i, s := range []struct {
		title string
		t     *printers.Table
		none  string
	}{
		{"MachineConfigPools", pools, "No MachineConfigPools."},
		{"Layered pools (MachineOSConfigs)", layered, "No layered pools (no MachineOSConfigs)."},
		{"Nodes", nodes, "No nodes."},
	} {
		if i > 0 {
			fmt.Fprintln(out)
		}
		fmt.Fprintf(out, "%s:\n", s.title)
		if s.t.Len() == 0 {
			fmt.Fprintln(out, s.none)
			continue
		}
		if err := s.t.Write(out); err != nil {
			return err
		}
	}
	return nil
}

func count(n int32) string { return strconv.Itoa(int(n)) }

// oneLine keeps a table row on one line: a reason's first line, cut at 80 characters.
func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + "…"
	}
	if r := []rune(s); len(r) > 80 {
		s = string(r[:79]) + "…"
	}
	return s
}

// Watch prints the status, then again after every change of a pool, node, MachineOSConfig or
// MachineOSBuild (changes within 200 ms are printed once), until ctx ends (Ctrl-C), which is not an error.
// On a terminal each print replaces the previous one; otherwise prints are separated by a blank line (tables)
// or simply follow each other (one JSON or YAML document each, YAML separated by ---).
func Watch(ctx context.Context, c client.WithWatch, out io.Writer, output string, now func() time.Time, terminal bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changed := make(chan struct{}, 1)
	errs := make(chan error, 4)
	for _, l := range []struct {
		list     client.ObjectList
		optional bool
	}{
		{&mcfgv1.MachineConfigPoolList{}, false}, {&corev1.NodeList{}, false},
		{&mcfgv1.MachineOSConfigList{}, true}, {&mcfgv1.MachineOSBuildList{}, true},
	} {
		go func() { errs <- watchKind(ctx, c, l.list, l.optional, changed) }()
	}
	last, printed := "", 0
	for {
		text, err := render(ctx, c, output, now)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if text != last {
			switch {
			case terminal && output == "":
				fmt.Fprint(out, "\x1b[H\x1b[2J")
			case printed > 0 && output == printers.YAML:
				fmt.Fprintln(out, "---")
			case printed > 0 && output == "":
				fmt.Fprintln(out)
			}
			if _, err := io.WriteString(out, text); err != nil {
				return err
			}
			last = text
			printed++
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-errs:
			if ctx.Err() != nil {
				return nil
			}
			return err
		case <-changed:
		}
		// Let a burst of changes (a rollout touches pools and nodes together) settle into one print.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// watchKind signals changed on every event of a kind, reopening the watch when the server ends it. It
// returns nil when ctx ends or the kind is optional and not served.
func watchKind(ctx context.Context, c client.WithWatch, list client.ObjectList, optional bool, changed chan<- struct{}) error {
	for ctx.Err() == nil {
		w, err := c.Watch(ctx, list)
		if err != nil {
			if ctx.Err() != nil || (optional && meta.IsNoMatchError(err)) {
				return nil
			}
			return fmt.Errorf("watching %T: %w", list, err)
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				break
			}
			select {
			case changed <- struct{}{}:
			default:
			}
		}
		w.Stop()
		select {
		case <-ctx.Done():
		case changed <- struct{}{}: // something may have changed while the watch was down
		}
	}
	return nil
}
