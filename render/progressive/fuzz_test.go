package progressive

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	rolloutsv1 "github.com/imagemode/imagemode/api/rollouts/v1alpha1"
)

// FuzzInWindow: any window the validation accepts gives a consistent answer: when now is outside, the next
// opening is later than now and is inside; a window the validation refuses never opens.
func FuzzInWindow(f *testing.F) {
	f.Add("02:00", int64(4*time.Hour), "Europe/Paris", "Saturday", int64(1764842400))
	f.Add("23:30", int64(2*time.Hour), "", "", int64(0))
	f.Add("7:00", int64(time.Minute), "America/New_York", "Funday", int64(-1))
	f.Fuzz(func(t *testing.T, start string, dur int64, tz, day string, unix int64) {
		w := rolloutsv1.MaintenanceWindow{Start: start, Duration: metav1.Duration{Duration: time.Duration(dur)}, TimeZone: tz}
		if day != "" {
			w.Days = []string{day}
		}
		now := time.Unix(unix%(1<<40), 0).UTC()
		_, err := parseWindow(w)
		open, next := InWindow([]rolloutsv1.MaintenanceWindow{w}, now)
		if err != nil {
			if open || !next.IsZero() {
				t.Fatalf("invalid window %+v (%v) opens: open %v next %v", w, err, open, next)
			}
			return
		}
		if open {
			return
		}
		if next.IsZero() || !next.After(now) {
			t.Fatalf("window %+v at %v: closed with next opening %v", w, now, next)
		}
		if o, _ := InWindow([]rolloutsv1.MaintenanceWindow{w}, next); !o {
			t.Fatalf("window %+v: the next opening %v is not inside it", w, next)
		}
	})
}
