package progressive

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	rolloutsv1 "github.com/imagemode/imagemode/api/rollouts/v1alpha1"
)

func TestInWindow(t *testing.T) {
	hours := func(h float64) metav1.Duration {
		return metav1.Duration{Duration: time.Duration(h * float64(time.Hour))}
	}
	weekend := rolloutsv1.MaintenanceWindow{Days: []string{"Saturday", "Sunday"}, Start: "02:00", Duration: hours(4), TimeZone: "America/New_York"}
	nightly := rolloutsv1.MaintenanceWindow{Start: "23:00", Duration: hours(2)}
	// 2026-12-04 is a Friday.
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		return tm
	}
	for _, tc := range []struct {
		name     string
		windows  []rolloutsv1.MaintenanceWindow
		now      string
		wantOpen bool
		wantNext string
	}{
		{name: "no windows: always", now: "2026-12-04T10:00:00Z", wantOpen: true},
		{name: "weekday, weekend window: next is Saturday 02:00 New York", windows: []rolloutsv1.MaintenanceWindow{weekend},
			now: "2026-12-04T10:00:00Z", wantNext: "2026-12-05T07:00:00Z"},
		{name: "inside Saturday's window", windows: []rolloutsv1.MaintenanceWindow{weekend}, now: "2026-12-05T08:30:00Z", wantOpen: true},
		{name: "window end is exclusive", windows: []rolloutsv1.MaintenanceWindow{weekend}, now: "2026-12-05T11:00:00Z",
			wantNext: "2026-12-06T07:00:00Z"},
		{name: "nightly window crossing midnight, after midnight", windows: []rolloutsv1.MaintenanceWindow{nightly},
			now: "2026-12-05T00:30:00Z", wantOpen: true},
		{name: "earliest of several", windows: []rolloutsv1.MaintenanceWindow{weekend, nightly}, now: "2026-12-04T10:00:00Z",
			wantNext: "2026-12-04T23:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			open, next := InWindow(tc.windows, at(tc.now))
			assert.Equal(t, tc.wantOpen, open)
			if tc.wantNext == "" {
				assert.True(t, next.IsZero(), "next %v", next)
			} else {
				assert.True(t, at(tc.wantNext).Equal(next), "next %v, want %s", next, tc.wantNext)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*rolloutsv1.RolloutPolicySpec)
		want string
	}{
		{name: "valid", edit: func(*rolloutsv1.RolloutPolicySpec) {}},
		{name: "no waves", edit: func(s *rolloutsv1.RolloutPolicySpec) { s.Waves = nil }, want: "spec.waves: at least one wave is required"},
		{name: "bad count", edit: func(s *rolloutsv1.RolloutPolicySpec) { s.Waves[1].Count.StrVal = "half" },
			want: "spec.waves[1].count: invalid value for IntOrString: invalid type: string is not a percentage"},
		{name: "bad selector", edit: func(s *rolloutsv1.RolloutPolicySpec) {
			s.Waves[2].NodeSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: "Near"}}}
		}, want: "spec.waves[2].nodeSelector: "},
		{name: "bad onFailure", edit: func(s *rolloutsv1.RolloutPolicySpec) { s.OnFailure = "Retry" }, want: `spec.onFailure: "Retry" is not Pause or Rollback`},
		{name: "bad window time", edit: func(s *rolloutsv1.RolloutPolicySpec) {
			s.MaintenanceWindows = []rolloutsv1.MaintenanceWindow{{Start: "25:00", Duration: metav1.Duration{Duration: time.Hour}}}
		}, want: `spec.maintenanceWindows[0]: start "25:00" is not HH:MM`},
		{name: "bad time zone", edit: func(s *rolloutsv1.RolloutPolicySpec) {
			s.MaintenanceWindows = []rolloutsv1.MaintenanceWindow{{Start: "01:00", Duration: metav1.Duration{Duration: time.Hour}, TimeZone: "Mars/Olympus"}}
		}, want: `spec.maintenanceWindows[0]: timeZone "Mars/Olympus"`},
		{name: "bad day", edit: func(s *rolloutsv1.RolloutPolicySpec) {
			s.MaintenanceWindows = []rolloutsv1.MaintenanceWindow{{Start: "01:00", Duration: metav1.Duration{Duration: time.Hour}, Days: []string{"Caturday"}}}
		}, want: `spec.maintenanceWindows[0]: day "Caturday" is not Monday … Sunday`},
		{name: "empty check", edit: func(s *rolloutsv1.RolloutPolicySpec) { s.HealthChecks.Commands[0].Command = " " },
			want: "spec.healthChecks.commands[0]: name and command are required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := canaryPolicy(rolloutsv1.FailurePause)
			tc.edit(&p.Spec)
			err := Validate(p)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), "RolloutPolicy worker: "+tc.want)
		})
	}
}
