package local

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
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

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") + "\n"
}
