// Package rebuildcmd is `imagemode rebuild MOSC`: it asks the build service to build a MachineOSConfig's
// current image again, by setting the machineconfiguration.openshift.io/rebuild annotation (a merge patch,
// as `kubectl annotate` would). On a terminal, or with --wait, it then shows the new build's progress until
// it ends, and fails if the build does not succeed.
package rebuildcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/cmd/imagemode/internal/clients"
	"github.com/imagemode/imagemode/cmd/imagemode/internal/printers"
	"github.com/imagemode/imagemode/cmd/imagemode/internal/progress"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos/osbuild"
)

// ErrBuildDidNotSucceed is returned when the awaited build failed or was interrupted.
var ErrBuildDidNotSucceed = errors.New("build did not succeed")

// Options are rebuild's settings.
type Options struct {
	// Wait shows the build's progress until it ends, also when standard output is not a terminal.
	Wait bool
	// NoWait only requests the rebuild, also on a terminal.
	NoWait bool
	// Timeout bounds the wait (0: none).
	Timeout time.Duration
	// PollInterval is how often the build is read while waiting (500 ms when zero).
	PollInterval time.Duration
}

// NewCommand returns `rebuild`.
func NewCommand(newClients clients.Func) *cobra.Command {
	var o Options
	cmd := &cobra.Command{
		Use:   "rebuild MACHINEOSCONFIG",
		Short: "Build a MachineOSConfig's image again (sets the rebuild annotation) and show the build's progress",
		Example: "  # Rebuild and follow the build (on a terminal)\n  imagemode rebuild layered-image\n\n" +
			"  # In a script: wait, one line per state change, non-zero exit if the build fails\n  imagemode rebuild layered-image --wait",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := newClients()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			tty := progress.IsTerminal(out)
			wait := (o.Wait || tty) && !o.NoWait
			return Run(cmd.Context(), cs.Client, out, args[0], wait, tty, o)
		},
	}
	cmd.Flags().BoolVar(&o.Wait, "wait", false, "wait for the build to end, also when not on a terminal (exit non-zero if it fails)")
	cmd.Flags().BoolVar(&o.NoWait, "no-wait", false, "only request the rebuild")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 0, "longest wait for the build (0: no limit)")
	return cmd
}

// Run requests the rebuild of a MachineOSConfig and, if wait, follows the new build to its end.
func Run(ctx context.Context, c client.Client, out io.Writer, name string, wait, terminal bool, o Options) error {
	mosc := &mcfgv1.MachineOSConfig{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, mosc); err != nil {
		return fmt.Errorf("reading machineosconfig %s: %w", name, err)
	}
	prev := osbuild.CurrentName(mosc)
	var prevUID types.UID
	if prev != "" {
		b := &mcfgv1.MachineOSBuild{}
		switch err := c.Get(ctx, client.ObjectKey{Name: prev}, b); {
		case err == nil:
			prevUID = b.UID
		case !apierrors.IsNotFound(err):
			return fmt.Errorf("reading machineosbuild %s: %w", prev, err)
		}
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, wellknown.RebuildAnnotation, time.Now().UTC().Format(time.RFC3339))
	if err := c.Patch(ctx, mosc, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		return fmt.Errorf("setting annotation %s on machineosconfig %s: %w", wellknown.RebuildAnnotation, name, err)
	}
	fmt.Fprintf(out, "machineosconfig/%s: rebuild requested\n", name)
	if !wait {
		return nil
	}
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	interval := o.PollInterval
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	line := progress.New(out, progress.Options{Terminal: terminal})
	defer line.Done("")
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		state, build, err := observe(ctx, c, name, prevUID)
		if err != nil {
			line.Done(fmt.Sprintf("machineosconfig/%s: %v", name, err))
			return err
		}
		if build == "" {
			line.Set(fmt.Sprintf("machineosconfig/%s: waiting for the build service to start the rebuild", name))
		} else {
			msg := fmt.Sprintf("machineosbuild/%s: %s", build, state)
			if printers.IsTerminal(state) {
				line.Done(msg)
				if state != string(osbuild.StateSucceeded) {
					return fmt.Errorf("machineosbuild %s: %s: %w", build, state, ErrBuildDidNotSucceed)
				}
				return nil
			}
			line.Set(msg)
		}
		select {
		case <-ctx.Done():
			line.Done(fmt.Sprintf("machineosconfig/%s: stopped waiting", name))
			return fmt.Errorf("waiting for the rebuild of machineosconfig %s: %w", name, ctx.Err())
		case <-t.C:
		}
	}
}

// observe returns the new build's name and state, or an empty name while the rebuild has not started: the
// annotation is still there, or the current build is still the one from before (same UID) or not created yet.
func observe(ctx context.Context, c client.Reader, name string, prevUID types.UID) (state, build string, err error) {
	mosc := &mcfgv1.MachineOSConfig{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, mosc); err != nil {
		return "", "", fmt.Errorf("reading machineosconfig %s: %w", name, err)
	}
	if _, pending := mosc.Annotations[wellknown.RebuildAnnotation]; pending {
		return "", "", nil
	}
	current := osbuild.CurrentName(mosc)
	if current == "" {
		return "", "", nil
	}
	b := &mcfgv1.MachineOSBuild{}
	if err := c.Get(ctx, client.ObjectKey{Name: current}, b); err != nil {
		if apierrors.IsNotFound(err) {
			return "", "", nil
		}
		return "", "", fmt.Errorf("reading machineosbuild %s: %w", current, err)
	}
	if b.UID == prevUID {
		return "", "", nil
	}
	return printers.BuildState(b), b.Name, nil
}
