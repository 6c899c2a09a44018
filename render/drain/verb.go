package drain

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/imagemode/imagemode/internal/wellknown"
)

// Action is what a node's drain request asks for.
type Action int

// Actions.
const (
	// ActionNone: no request, or the request was already performed (desiredDrain == lastAppliedDrain).
	ActionNone Action = iota
	// ActionDrain: cordon and evict.
	ActionDrain
	// ActionUncordon: make the node schedulable again.
	ActionUncordon
)

func (a Action) String() string {
	switch a {
	case ActionDrain:
		return wellknown.DrainVerb
	case ActionUncordon:
		return wellknown.UncordonVerb
	}
	return "none"
}

// NextAction reads a node's drain request: the verb of desiredDrain (the part before the first "-") unless
// lastAppliedDrain already equals it. It also returns the desiredDrain value, to be written to
// lastAppliedDrain once done. An unknown verb is an error.
func NextAction(node *corev1.Node) (Action, string, error) {
	desired := node.Annotations[wellknown.DesiredDrainAnnotation]
	if desired == "" || desired == node.Annotations[wellknown.LastAppliedDrainAnnotation] {
		return ActionNone, desired, nil
	}
	verb, _, _ := strings.Cut(desired, "-")
	switch verb {
	case wellknown.DrainVerb:
		return ActionDrain, desired, nil
	case wellknown.UncordonVerb:
		return ActionUncordon, desired, nil
	}
	return ActionNone, desired, fmt.Errorf("reading %s=%q of node %s: unknown verb %q", wellknown.DesiredDrainAnnotation, desired, node.Name, verb)
}

// Options are the drain controller's timings.
type Options struct {
	// AttemptTimeout bounds one drain attempt (evictions and waiting for the pods to go).
	AttemptTimeout time.Duration
	// EvictRetryDelay is the pause between evictions a PodDisruptionBudget refused, within an attempt.
	EvictRetryDelay time.Duration
	// RetryInterval is the wait before retrying a failed attempt, SlowRetryInterval the wait once the drain
	// has been failing for SlowRetryAfter.
	RetryInterval, SlowRetryInterval, SlowRetryAfter time.Duration
	// StuckAfter is how long a drain may fail before it is reported (event DrainFailed, mcc_drain_err=1).
	StuckAfter time.Duration
	// MaxConcurrentDrains is how many nodes are drained at the same time.
	MaxConcurrentDrains int
}

// DefaultOptions are the reference's timings: 90 s attempts, retried every minute, every 5 minutes after 10
// minutes, reported after an hour.
func DefaultOptions() Options {
	return Options{
		AttemptTimeout: 90 * time.Second, EvictRetryDelay: 5 * time.Second,
		RetryInterval: time.Minute, SlowRetryInterval: 5 * time.Minute, SlowRetryAfter: 10 * time.Minute,
		StuckAfter: time.Hour, MaxConcurrentDrains: 5,
	}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	for _, f := range []struct{ v, def *time.Duration }{
		{&o.AttemptTimeout, &d.AttemptTimeout}, {&o.EvictRetryDelay, &d.EvictRetryDelay}, {&o.RetryInterval, &d.RetryInterval},
		{&o.SlowRetryInterval, &d.SlowRetryInterval}, {&o.SlowRetryAfter, &d.SlowRetryAfter}, {&o.StuckAfter, &d.StuckAfter},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	if o.MaxConcurrentDrains <= 0 {
		o.MaxConcurrentDrains = d.MaxConcurrentDrains
	}
	return o
}

// RetryAfter is how long to wait before the next attempt of a drain that has been failing for failingFor.
func (o Options) RetryAfter(failingFor time.Duration) time.Duration {
	if failingFor >= o.SlowRetryAfter {
		return o.SlowRetryInterval
	}
	return o.RetryInterval
}

// IsStuck reports whether a drain failing for failingFor is to be reported.
func (o Options) IsStuck(failingFor time.Duration) bool { return failingFor >= o.StuckAfter }
