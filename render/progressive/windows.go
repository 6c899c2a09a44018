package progressive

import (
	"fmt"
	"time"

	rolloutsv1 "github.com/imagemode/imagemode/api/rollouts/v1alpha1"
)

type window struct {
	days     map[time.Weekday]bool // nil: every day
	hour     int
	minute   int
	duration time.Duration
	loc      *time.Location
}

var weekdays = map[string]time.Weekday{
	"Sunday": time.Sunday, "Monday": time.Monday, "Tuesday": time.Tuesday, "Wednesday": time.Wednesday,
	"Thursday": time.Thursday, "Friday": time.Friday, "Saturday": time.Saturday,
}

func parseWindow(w rolloutsv1.MaintenanceWindow) (window, error) {
	var out window
	start, err := time.Parse("15:04", w.Start)
	if err != nil {
		return out, fmt.Errorf("start %q is not HH:MM", w.Start)
	}
	out.hour, out.minute = start.Hour(), start.Minute()
	if w.Duration.Duration <= 0 {
		return out, fmt.Errorf("duration must be positive")
	}
	out.duration = w.Duration.Duration
	tz := w.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return out, fmt.Errorf("timeZone %q: %v", w.TimeZone, err)
	}
	out.loc = loc
	for _, d := range w.Days {
		wd, ok := weekdays[d]
		if !ok {
			return out, fmt.Errorf("day %q is not Monday … Sunday", d)
		}
		if out.days == nil {
			out.days = map[time.Weekday]bool{}
		}
		out.days[wd] = true
	}
	return out, nil
}

// InWindow reports whether now is inside one of the windows (always, when there are none) and, when it is
// not, when the next one opens (zero when none ever does). Windows are validated before.
func InWindow(windows []rolloutsv1.MaintenanceWindow, now time.Time) (bool, time.Time) {
	if len(windows) == 0 {
		return true, time.Time{}
	}
	var next time.Time
	for _, mw := range windows {
		w, err := parseWindow(mw)
		if err != nil {
			continue
		}
		local := now.In(w.loc)
		// Openings from a week back (a long window may still be open) to eight days ahead.
		for d := -7; d <= 8; d++ {
			day := time.Date(local.Year(), local.Month(), local.Day()+d, w.hour, w.minute, 0, 0, w.loc)
			if w.days != nil && !w.days[day.Weekday()] {
				continue
			}
			if !now.Before(day) && now.Before(day.Add(w.duration)) {
				return true, time.Time{}
			}
			if day.After(now) && (next.IsZero() || day.Before(next)) {
				next = day
			}
		}
	}
	return false, next
}
