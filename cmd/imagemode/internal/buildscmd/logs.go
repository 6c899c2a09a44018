package buildscmd

import (
	"context"
	"fmt"
	"io"
	"strconv"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/cmd/imagemode/internal/clients"
	"github.com/imagemode/imagemode/cmd/imagemode/internal/printers"
	"github.com/imagemode/imagemode/machineos/osbuild"
)

func newLogsCommand(newClients clients.Func, o *Options) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Print a build's log (the last attempt's, also after its pod is gone); -f follows it until the build ends",
		Example: "  # The log of a finished build\n  imagemode builds logs layered-image-1a2b3c\n\n" +
			"  # Follow a running build\n  imagemode builds logs -f layered-image-1a2b3c",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := newClients()
			if err != nil {
				return err
			}
			if follow {
				return Follow(cmd.Context(), cs.Client, cmd.OutOrStdout(), cmd.ErrOrStderr(), o.Namespace, args[0])
			}
			return Logs(cmd.Context(), cs.Client, cmd.OutOrStdout(), cmd.ErrOrStderr(), o.Namespace, args[0])
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow the log until the build succeeds, fails or is interrupted")
	return cmd
}

// Logs prints the kept log of a build. A log whose front was cut (it keeps the last 512 KiB) says so on
// errOut first.
func Logs(ctx context.Context, c client.Reader, out, errOut io.Writer, namespace, name string) error {
	if err := c.Get(ctx, client.ObjectKey{Name: name}, &mcfgv1.MachineOSBuild{}); err != nil {
		return fmt.Errorf("reading machineosbuild %s: %w", name, err)
	}
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: osbuild.BuildLogCMName(name)}, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("build %s has no log yet (configmap %s/%s not found)", name, namespace, osbuild.BuildLogCMName(name))
		}
		return fmt.Errorf("reading configmap %s/%s: %w", namespace, osbuild.BuildLogCMName(name), err)
	}
	f := &follower{out: out, errOut: errOut}
	return f.show(cm)
}

// follower prints a build-log ConfigMap's successive versions without repeating itself: it remembers the
// attempt (pod) and the offset in that attempt's output it printed up to.
type follower struct {
	out, errOut io.Writer
	pod         string
	printed     int64
	seen        bool
}

// show prints what cm has that was not printed yet.
func (f *follower) show(cm *corev1.ConfigMap) error {
	pod := cm.Annotations[osbuild.BuildLogPodAnnotation]
	text := cm.Data[osbuild.BuildLogKey]
	start, _ := strconv.ParseInt(cm.Annotations[osbuild.BuildLogOffsetAnnotation], 10, 64)
	if f.seen && pod != f.pod {
		if _, err := fmt.Fprintf(f.out, "--- attempt %s ---\n", pod); err != nil {
			return err
		}
		f.printed = 0
	}
	f.seen, f.pod = true, pod
	end := start + int64(len(text))
	if f.printed < start {
		fmt.Fprintf(f.errOut, "(%d bytes of attempt %s's log are not kept)\n", start-f.printed, printers.OrNone(pod))
		f.printed = start
	}
	if f.printed < end {
		if _, err := io.WriteString(f.out, text[f.printed-start:]); err != nil {
			return err
		}
		f.printed = end
	}
	return nil
}

// Follow prints a build's log as it grows, a header `--- attempt <pod> ---` when a new attempt starts,
// and returns once the build reached a terminal state (after printing the log's last version). A build
// without a log yet is waited for.
func Follow(ctx context.Context, c client.WithWatch, out, errOut io.Writer, namespace, name string) error {
	f := &follower{out: out, errOut: errOut}
	cmName := osbuild.BuildLogCMName(name)
	for {
		// Open the watches first, then read: nothing that happens in between is missed.
		cmWatch, err := c.Watch(ctx, &corev1.ConfigMapList{}, client.InNamespace(namespace), client.MatchingFields{"metadata.name": cmName})
		if err != nil {
			return fmt.Errorf("watching configmap %s/%s: %w", namespace, cmName, err)
		}
		buildWatch, err := c.Watch(ctx, &mcfgv1.MachineOSBuildList{}, client.MatchingFields{"metadata.name": name})
		if err != nil {
			cmWatch.Stop()
			return fmt.Errorf("watching machineosbuild %s: %w", name, err)
		}
		done, err := f.follow(ctx, c, namespace, name, cmWatch, buildWatch)
		cmWatch.Stop()
		buildWatch.Stop()
		if done || err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil // Ctrl-C
		}
	}
}

// follow reads the build and its log, then applies the watches' events. It returns done once the build is
// terminal, or false when a watch ended (the caller reopens them).
func (f *follower) follow(ctx context.Context, c client.Reader, namespace, name string, cmWatch, buildWatch watch.Interface) (bool, error) {
	cm := &corev1.ConfigMap{}
	switch err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: osbuild.BuildLogCMName(name)}, cm); {
	case err == nil:
		if err := f.show(cm); err != nil {
			return true, err
		}
	case !apierrors.IsNotFound(err):
		return true, fmt.Errorf("reading configmap %s/%s: %w", namespace, cm.Name, err)
	}
	mosb := &mcfgv1.MachineOSBuild{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, mosb); err != nil {
		return true, fmt.Errorf("reading machineosbuild %s: %w", name, err)
	}
	if printers.IsTerminal(printers.BuildState(mosb)) {
		return true, f.final(ctx, c, namespace, mosb)
	}
	for {
		select {
		case <-ctx.Done():
			return true, nil
		case ev, ok := <-cmWatch.ResultChan():
			if !ok || ev.Type == watch.Error {
				return false, nil
			}
			if cm, isCM := ev.Object.(*corev1.ConfigMap); isCM && ev.Type != watch.Deleted {
				if err := f.show(cm); err != nil {
					return true, err
				}
			}
		case ev, ok := <-buildWatch.ResultChan():
			if !ok || ev.Type == watch.Error {
				return false, nil
			}
			mosb, isBuild := ev.Object.(*mcfgv1.MachineOSBuild)
			if !isBuild {
				continue
			}
			if ev.Type == watch.Deleted {
				return true, fmt.Errorf("machineosbuild %s was deleted", name)
			}
			if printers.IsTerminal(printers.BuildState(mosb)) {
				return true, f.final(ctx, c, namespace, mosb)
			}
		}
	}
}

// final prints the log's last version once the build ended, and the build's end state on errOut.
func (f *follower) final(ctx context.Context, c client.Reader, namespace string, mosb *mcfgv1.MachineOSBuild) error {
	cm := &corev1.ConfigMap{}
	switch err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: osbuild.BuildLogCMName(mosb.Name)}, cm); {
	case err == nil:
		if err := f.show(cm); err != nil {
			return err
		}
	case apierrors.IsNotFound(err):
		if !f.seen {
			fmt.Fprintf(f.errOut, "build %s kept no log\n", mosb.Name)
		}
	default:
		return fmt.Errorf("reading configmap %s/%s: %w", namespace, osbuild.BuildLogCMName(mosb.Name), err)
	}
	fmt.Fprintf(f.errOut, "build %s: %s\n", mosb.Name, printers.BuildState(mosb))
	return nil
}
