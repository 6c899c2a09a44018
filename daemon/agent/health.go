package agent

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	rolloutsv1 "github.com/imagemode/imagemode/api/rollouts/v1alpha1"
	"github.com/imagemode/imagemode/daemon"
)

// healthCheckTimeout bounds one health check.
const healthCheckTimeout = 2 * time.Minute

// EventHealthCheckFailed is recorded on the node when a RolloutPolicy's health check fails on it.
const EventHealthCheckFailed = "HealthCheckFailed"

// healthReport runs the health checks a RolloutPolicy gave the node (HealthChecksAnnotation) once the node
// validated on the target they are for, and returns the report to write (HealthReportAnnotation); ok is
// false when no check is due (none given, given for another target, or already reported for this one).
// Commands run with sh -c on the host, units are checked with systemctl is-active; the first failure ends
// the run.
func (a *Agent) healthReport(ctx context.Context, node *corev1.Node, desired Target) (string, bool) {
	raw := node.Annotations[rolloutsv1.HealthChecksAnnotation]
	if raw == "" {
		return "", false
	}
	var checks rolloutsv1.NodeHealthChecks
	if err := json.Unmarshal([]byte(raw), &checks); err != nil {
		return a.encodeReport(rolloutsv1.HealthReport{Config: desired.Config, Image: desired.Image,
			Check: rolloutsv1.HealthChecksAnnotation, Output: "unreadable: " + err.Error()}), true
	}
	if checks.Config != desired.Config || checks.Image != desired.Image {
		return "", false
	}
	if prev := node.Annotations[rolloutsv1.HealthReportAnnotation]; prev != "" {
		var r rolloutsv1.HealthReport
		if json.Unmarshal([]byte(prev), &r) == nil && r.Config == desired.Config && r.Image == desired.Image {
			return "", false
		}
	}
	report := rolloutsv1.HealthReport{Config: desired.Config, Image: desired.Image, Passed: true}
	runner := a.opts.Commands
	if runner == nil {
		if ch, ok := a.opts.Host.(daemon.CommandHost); ok {
			runner = ch.Commands()
		}
	}
	type check struct {
		name, cmd string
		args      []string
	}
	var all []check
	for _, c := range checks.Commands {
		all = append(all, check{c.Name, "sh", []string{"-c", c.Command}})
	}
	for _, u := range checks.Units {
		all = append(all, check{u, daemon.SystemctlCmd, []string{"is-active", u}})
	}
	for _, c := range all {
		if runner == nil {
			report.Passed, report.Check, report.Output = false, c.name, "this host cannot run commands"
			break
		}
		cctx, cancel := context.WithTimeout(ctx, healthCheckTimeout)
		out, err := runner.Run(cctx, c.cmd, c.args...)
		cancel()
		if err == nil {
			continue
		}
		report.Passed, report.Check = false, c.name
		var ce *daemon.CommandError
		msg := strings.TrimSpace(string(out))
		if errors.As(err, &ce) {
			if ce.Stderr != "" {
				msg = strings.TrimSpace(msg + "\n" + ce.Stderr)
			}
			msg = strings.TrimSpace(msg + "\n" + ce.Err.Error())
		} else {
			msg = strings.TrimSpace(msg + "\n" + err.Error())
		}
		report.Output = msg
		break
	}
	ctrl.LoggerFrom(ctx).Info("health checks", "target", desired.String(), "passed", report.Passed, "check", report.Check)
	if !report.Passed {
		a.recorder.Eventf(node, nil, corev1.EventTypeWarning, EventHealthCheckFailed, "HealthCheck",
			"Health check %s failed on %s: %s", report.Check, desired, truncateTo(report.Output, rolloutsv1.MaxHealthOutput))
	}
	return a.encodeReport(report), true
}

func (a *Agent) encodeReport(r rolloutsv1.HealthReport) string {
	r.Output = truncateTo(r.Output, rolloutsv1.MaxHealthOutput)
	raw, _ := json.Marshal(r)
	return string(raw)
}

func truncateTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
