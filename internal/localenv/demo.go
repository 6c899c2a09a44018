package localenv

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/imagemode/imagemode/examples"
)

// StepResult is one step of a demo run.
type StepResult struct {
	Name     string
	Duration time.Duration
	Err      error
}

// Steps runs named steps in order, printing each as it starts and ends, and stops at the first failure.
type Steps struct {
	Out     io.Writer
	Results []StepResult
}

// Run runs one step unless an earlier one failed.
func (s *Steps) Run(name string, fn func() error) error {
	if err := s.Err(); err != nil {
		return err
	}
	fmt.Fprintf(s.Out, "==> %s\n", name)
	start := time.Now()
	err := fn()
	r := StepResult{Name: name, Duration: time.Since(start), Err: err}
	s.Results = append(s.Results, r)
	if err != nil {
		fmt.Fprintf(s.Out, "    FAILED after %s: %v\n", r.Duration.Round(time.Millisecond), err)
	} else {
		fmt.Fprintf(s.Out, "    ok (%s)\n", r.Duration.Round(time.Millisecond))
	}
	return err
}

// Err returns the first step error.
func (s *Steps) Err() error {
	for _, r := range s.Results {
		if r.Err != nil {
			return fmt.Errorf("step %q: %w", r.Name, r.Err)
		}
	}
	return nil
}

// Summary prints the time of every step and the total.
func (s *Steps) Summary() {
	tw := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tTIME\tRESULT")
	var total time.Duration
	for _, r := range s.Results {
		res := "ok"
		if r.Err != nil {
			res = "FAILED"
		}
		total += r.Duration
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, r.Duration.Round(time.Millisecond), res)
	}
	fmt.Fprintf(tw, "total\t%s\t\n", total.Round(time.Millisecond))
	tw.Flush()
}

// Demo runs the docs' story on the environment: start its parts, create the cluster objects, apply the
// docs' MachineOSConfig unchanged with kubectl and show it as stored by the API server.
func (e *Env) Demo(ctx context.Context, steps *Steps) error {
	steps.Run("control plane: etcd, kube-apiserver + CRDs, kube-controller-manager", func() error {
		return e.StartControlPlane(ctx)
	})
	steps.Run("registry: TLS, htpasswd auth, deletes enabled", func() error {
		if err := e.StartRegistry(ctx); err != nil {
			return err
		}
		fmt.Fprintf(steps.Out, "    registry https://%s (CA %s)\n", e.Registry.Host, filepath.Join(e.Registry.CertDir, "ca.crt"))
		return nil
	})
	steps.Run("base OS image pushed", func() error {
		if err := e.PushBaseImage(ctx); err != nil {
			return err
		}
		fmt.Fprintf(steps.Out, "    %s\n", e.BaseImage)
		return nil
	})
	steps.Run("namespace, pull/push secrets, pools master/worker/layered-image", func() error {
		return e.CreateClusterObjects(ctx)
	})
	steps.Run("controllers: render, node disruption policy status; pools rendered", func() error {
		if err := e.StartControllers(ctx); err != nil {
			return err
		}
		if err := e.WaitPoolsRendered(ctx, time.Minute); err != nil {
			return fmt.Errorf("waiting for pools to render: %w", err)
		}
		// status.configuration (the CONFIG column) advances when the pool's nodes are updated; the render
		// controller writes spec.configuration.
		out, err := e.ControlPlane.Kubectl(ctx, nil, "get", "machineconfigpool", "-o",
			"custom-columns=NAME:.metadata.name,RENDERED (spec.configuration):.spec.configuration.name,SOURCES:.spec.configuration.source[*].name")
		fmt.Fprint(steps.Out, indent(out))
		return err
	})
	steps.Run("kubectl apply -f the docs' MachineOSConfig (unchanged)", func() error {
		raw, err := examples.Doc(examples.MachineOSConfigLayeredImage)
		if err != nil {
			return err
		}
		out, err := e.ControlPlane.Kubectl(ctx, raw, "apply", "-f", "-")
		fmt.Fprint(steps.Out, indent(out))
		return err
	})
	steps.Run("kubectl get machineosconfig", func() error {
		out, err := e.ControlPlane.Kubectl(ctx, nil, "get", "machineosconfig")
		fmt.Fprint(steps.Out, indent(out))
		if err != nil {
			return err
		}
		out, err = e.ControlPlane.Kubectl(ctx, nil, "get", "machineosconfig", "layered-image", "-o", "yaml")
		fmt.Fprint(steps.Out, indent(out))
		return err
	})
	return steps.Err()
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") + "\n"
}
