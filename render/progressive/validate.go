package progressive

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	rolloutsv1 "github.com/imagemode/imagemode/api/rollouts/v1alpha1"
)

// Validate checks a policy's spec beyond its schema; the error names the policy and the field.
func Validate(p *rolloutsv1.RolloutPolicy) error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("RolloutPolicy %s: spec.%s: %s", p.Name, field, fmt.Sprintf(format, args...))
	}
	s := &p.Spec
	if s.MachineConfigPool.Name == "" {
		return bad("machineConfigPool.name", "required")
	}
	if len(s.Waves) == 0 {
		return bad("waves", "at least one wave is required")
	}
	for i, w := range s.Waves {
		field := fmt.Sprintf("waves[%d]", i)
		set := 0
		if len(w.Nodes) > 0 {
			set++
		}
		if w.NodeSelector != nil {
			set++
			if _, err := metav1.LabelSelectorAsSelector(w.NodeSelector); err != nil {
				return bad(field+".nodeSelector", "%v", err)
			}
		}
		if w.Count != nil {
			set++
			if _, err := scaled(w.Count, 100, true); err != nil {
				return bad(field+".count", "%v", err)
			}
		}
		if set > 1 {
			return bad(field, "set at most one of nodes, nodeSelector and count")
		}
		if w.MaxUnavailable != nil {
			if _, err := scaled(w.MaxUnavailable, 100, false); err != nil {
				return bad(field+".maxUnavailable", "%v", err)
			}
		}
		if w.SoakTime != nil && w.SoakTime.Duration < 0 {
			return bad(field+".soakTime", "must not be negative")
		}
	}
	switch s.OnFailure {
	case "", rolloutsv1.FailurePause, rolloutsv1.FailureRollback:
	default:
		return bad("onFailure", "%q is not Pause or Rollback", s.OnFailure)
	}
	if t := s.HealthChecks.Timeout; t != nil && t.Duration <= 0 {
		return bad("healthChecks.timeout", "must be positive")
	}
	for i, c := range s.HealthChecks.Commands {
		if c.Name == "" || strings.TrimSpace(c.Command) == "" {
			return bad(fmt.Sprintf("healthChecks.commands[%d]", i), "name and command are required")
		}
	}
	for i, w := range s.MaintenanceWindows {
		if _, err := parseWindow(w); err != nil {
			return bad(fmt.Sprintf("maintenanceWindows[%d]", i), "%v", err)
		}
	}
	return nil
}

// scaled reads a number or percentage of total (a negative number is an error).
func scaled(v *intstr.IntOrString, total int, roundUp bool) (int, error) {
	n, err := intstr.GetScaledValueFromIntOrPercent(v, total, roundUp)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, fmt.Errorf("%s is negative", v.String())
	}
	return n, nil
}

// selects reports whether the wave's selector selects the labels (validated before).
func selects(sel *metav1.LabelSelector, l map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && s.Matches(labels.Set(l))
}

func healthTimeout(p *rolloutsv1.RolloutPolicy) time.Duration {
	if t := p.Spec.HealthChecks.Timeout; t != nil {
		return t.Duration
	}
	return DefaultHealthTimeout
}
