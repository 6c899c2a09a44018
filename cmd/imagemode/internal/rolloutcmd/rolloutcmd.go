// Package rolloutcmd is `imagemode rollout status|pause|resume|promote|abort POOL`: it shows and steers the
// RolloutPolicy (rollouts.imagemode.io) that names a pool. status prints the rollout's phase, waves, nodes
// and the failed gate with its output (-w: again on every change); pause and resume set spec.paused, promote
// lets the next wave start now without waiting for the current one's soak time (spec.promoteWave), abort
// rolls the nodes the rollout changed back (spec.abort). Every change is a merge patch of the spec, as
// `kubectl patch` would do.
package rolloutcmd

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rolloutsv1 "github.com/imagemode/imagemode/api/rollouts/v1alpha1"
	"github.com/imagemode/imagemode/cmd/imagemode/internal/clients"
	"github.com/imagemode/imagemode/render/rollout"
)

// NewCommand returns `rollout` and its subcommands.
func NewCommand(newClients clients.Func) *cobra.Command {
	root := &cobra.Command{
		Use:   "rollout",
		Short: "Show and steer the progressive rollout of a pool (its RolloutPolicy)",
	}
	var watch bool
	status := &cobra.Command{
		Use:     "status POOL",
		Short:   "Show the rollout's phase, waves, nodes and any failed gate",
		Example: "  imagemode rollout status worker\n  imagemode rollout status worker -w",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := newClients()
			if err != nil {
				return err
			}
			if !watch {
				return Status(cmd.Context(), cs.Client, cmd.OutOrStdout(), args[0])
			}
			return Watch(cmd.Context(), cs.Client, cmd.OutOrStdout(), args[0], time.Second)
		},
	}
	status.Flags().BoolVarP(&watch, "watch", "w", false, "print the status again on every change (until interrupted)")
	root.AddCommand(status)
	for _, a := range []struct {
		use, short string
		act        Action
	}{
		{"pause POOL", "Start no further node (nodes in flight finish)", ActionPause},
		{"resume POOL", "Let nodes start again", ActionResume},
		{"promote POOL", "Start the next wave now, without waiting for the current wave's soak time", ActionPromote},
		{"abort POOL", "Stop the rollout and move every node it changed back to what it ran before", ActionAbort},
	} {
		act := a.act
		root.AddCommand(&cobra.Command{
			Use: a.use, Short: a.short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				cs, err := newClients()
				if err != nil {
					return err
				}
				return Steer(cmd.Context(), cs.Client, cmd.OutOrStdout(), args[0], act)
			},
		})
	}
	return root
}

// Find returns the RolloutPolicy naming pool.
func Find(ctx context.Context, c client.Client, pool string) (*rolloutsv1.RolloutPolicy, error) {
	var list rolloutsv1.RolloutPolicyList
	if err := c.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("listing rolloutpolicies: %w", err)
	}
	items := make([]*rolloutsv1.RolloutPolicy, len(list.Items))
	for i := range list.Items {
		items[i] = &list.Items[i]
	}
	p, err := rollout.PolicyFor(pool, items)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, fmt.Errorf("no RolloutPolicy names pool %s (its changes roll out by spec.maxUnavailable alone)", pool)
	}
	return p, nil
}

// Action is a change of a policy's manual controls.
type Action string

const (
	ActionPause   Action = "pause"
	ActionResume  Action = "resume"
	ActionPromote Action = "promote"
	ActionAbort   Action = "abort"
)

// Steer applies act to the pool's policy.
func Steer(ctx context.Context, c client.Client, out io.Writer, pool string, act Action) error {
	p, err := Find(ctx, c, pool)
	if err != nil {
		return err
	}
	var spec, done string
	switch act {
	case ActionPause:
		spec, done = `{"paused":true}`, "paused: no further node starts"
	case ActionResume:
		spec, done = `{"paused":false}`, "resumed"
	case ActionPromote:
		next := p.Status.CurrentWave + 1
		if int(next) > len(p.Spec.Waves) {
			return fmt.Errorf("rolloutpolicy %s: every wave has started; nothing to promote", p.Name)
		}
		spec, done = fmt.Sprintf(`{"promoteWave":%d}`, next), fmt.Sprintf("promoted: wave %d may start without waiting for wave %d's soak time", next+1, next)
	case ActionAbort:
		spec, done = `{"abort":true}`, "aborted: the nodes it changed go back to what they ran before"
	default:
		return fmt.Errorf("unknown action %q", act)
	}
	patch := []byte(`{"spec":` + spec + `}`)
	if err := c.Patch(ctx, p, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("patching rolloutpolicy %s: %w", p.Name, err)
	}
	fmt.Fprintf(out, "rolloutpolicy/%s (pool %s) %s\n", p.Name, pool, done)
	return nil
}

// Status prints the rollout of pool.
func Status(ctx context.Context, c client.Client, out io.Writer, pool string) error {
	p, err := Find(ctx, c, pool)
	if err != nil {
		return err
	}
	_, err = io.WriteString(out, Render(p))
	return err
}

// Watch prints the status each time it changes, until ctx ends.
func Watch(ctx context.Context, c client.Client, out io.Writer, pool string, interval time.Duration) error {
	last := ""
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		p, err := Find(ctx, c, pool)
		if err != nil {
			return err
		}
		if s := Render(p); s != last {
			if _, err := io.WriteString(out, s+"\n"); err != nil {
				return err
			}
			last = s
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Render formats a policy's status.
func Render(p *rolloutsv1.RolloutPolicy) string {
	var b strings.Builder
	st := p.Status
	fmt.Fprintf(&b, "rolloutpolicy/%s  pool %s  phase %s\n", p.Name, p.Spec.MachineConfigPool.Name, orDash(string(st.Phase)))
	target := st.Target.Config
	if st.Target.Image != "" {
		target += " / " + st.Target.Image
	}
	fmt.Fprintf(&b, "target: %s\n", orDash(target))
	var controls []string
	if p.Spec.Paused {
		controls = append(controls, "paused")
	}
	if p.Spec.Abort {
		controls = append(controls, "abort")
	}
	if p.Spec.PromoteWave != nil {
		controls = append(controls, fmt.Sprintf("promoteWave %d", *p.Spec.PromoteWave))
	}
	if len(controls) > 0 {
		fmt.Fprintf(&b, "controls: %s\n", strings.Join(controls, ", "))
	}
	if st.Message != "" {
		fmt.Fprintf(&b, "%s\n", st.Message)
	}
	if g := st.FailedGate; g != nil {
		fmt.Fprintf(&b, "failed gate: %s on node %s", g.Gate, g.Node)
		if g.Check != "" {
			fmt.Fprintf(&b, " (check %s)", g.Check)
		}
		fmt.Fprintf(&b, " at %s\n", g.Time.UTC().Format(time.RFC3339))
		for _, l := range strings.Split(strings.TrimRight(g.Output, "\n"), "\n") {
			if l != "" {
				fmt.Fprintf(&b, "  | %s\n", l)
			}
		}
	}
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nWAVE\tNAME\tPHASE\tNODES\tSTARTED\tHEALTHY\tCOMPLETED")
	for i, w := range st.Waves {
		mark := " "
		if int32(i) == st.CurrentWave {
			mark = "*"
		}
		fmt.Fprintf(tw, "%s%d\t%s\t%s\t%d\t%s\t%s\t%s\n", mark, i, w.Name, w.Phase, w.Size, ts(w.StartedAt), ts(w.HealthyAt), ts(w.CompletedAt))
	}
	if len(st.Nodes) > 0 {
		fmt.Fprintln(tw, "\nNODE\tWAVE\tPHASE\tSINCE\tMESSAGE")
		for _, n := range st.Nodes {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", n.Name, n.Wave, n.Phase, ts(n.Since), n.Message)
		}
	}
	_ = tw.Flush()
	return b.String()
}

func ts(t *metav1.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
