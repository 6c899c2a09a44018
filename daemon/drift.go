package daemon

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/imagemode/imagemode/render/machineconfig"
)

// driftDebounce is how long the drift monitor waits after the last event on a tracked path before
// validating: an editor's or a package's burst of writes is checked once.
const driftDebounce = 100 * time.Millisecond

// DriftMonitor watches the files and units of the config a node runs and reports when the host drifts from
// it and when it is back (the reference's config drift monitor). It watches, through inotify, the
// directories holding every file, unit and drop-in of the config that exist when it starts; an event on one
// of those paths (written, created, removed, renamed, chmod) is followed, after a short quiet period, by a
// full ValidateOnDisk.
type DriftMonitor struct {
	root     Root
	sd       Systemd
	mc       *mcfgv1.MachineConfig
	onChange func(error)
	watcher  *fsnotify.Watcher
	tracked  map[string]bool // local paths of the config's files and units
	cancel   context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once

	mu      sync.Mutex // serializes checks and onChange calls
	verdict string     // the last error's text, "" when the host matched
}

// StartDriftMonitor validates the host against mc and starts watching it. onChange is called, from the
// monitor's goroutine or from Check, each time the verdict changes: with the *DriftError of the first
// difference when the host drifts, with nil when it matches again (or with another error when validating
// fails). The verdict when starting is not reported: the caller validated before starting, or calls Check.
// onChange must not call Stop. The monitor runs until Stop or until ctx is done.
func StartDriftMonitor(ctx context.Context, root Root, sd Systemd, mc *mcfgv1.MachineConfig, onChange func(error)) (*DriftMonitor, error) {
	if mc == nil {
		return nil, fmt.Errorf("starting drift monitor: %w", ErrNoConfig)
	}
	ign, err := machineconfig.ParseIgnition(mc.Spec.Config.Raw)
	if err != nil {
		return nil, fmt.Errorf("starting drift monitor: parsing config %q: %w", mc.Name, err)
	}
	var paths []string
	for _, f := range ign.Storage.Files {
		paths = append(paths, f.Path)
	}
	for _, u := range ign.Systemd.Units {
		paths = append(paths, UnitPath(u.Name))
		for _, d := range u.Dropins {
			paths = append(paths, DropinPath(u.Name, d.Name))
		}
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("starting drift monitor: %w", err)
	}
	m := &DriftMonitor{root: root, sd: sd, mc: mc, onChange: onChange, watcher: w, tracked: map[string]bool{}, done: make(chan struct{})}
	dirs := map[string]bool{}
	for _, p := range paths {
		real, err := root.Resolve(p)
		if err != nil {
			continue
		}
		if _, err := root.Lstat(real); err != nil {
			continue
		}
		m.tracked[root.HostPath(real)] = true
		dir := root.HostPath(path.Dir(real))
		if dirs[dir] {
			continue
		}
		if err := w.Add(dir); err != nil {
			_ = w.Close()
			return nil, fmt.Errorf("starting drift monitor: watching %s: %w", path.Dir(real), err)
		}
		dirs[dir] = true
	}
	if err := ValidateOnDisk(ctx, root, sd, mc); err != nil {
		var drift *DriftError
		if !errors.As(err, &drift) {
			_ = w.Close()
			return nil, fmt.Errorf("starting drift monitor: %w", err)
		}
		m.verdict = err.Error()
	}
	ctx, m.cancel = context.WithCancel(ctx)
	go m.run(ctx)
	return m, nil
}

// Stop stops watching and waits for the monitor's goroutine to end. It may be called more than once.
func (m *DriftMonitor) Stop() {
	m.stopOnce.Do(func() {
		m.cancel()
		<-m.done
		_ = m.watcher.Close()
	})
}

// Check validates the host now, reports a changed verdict to onChange like an event would, and returns
// ValidateOnDisk's result.
func (m *DriftMonitor) Check(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	err := ValidateOnDisk(ctx, m.root, m.sd, m.mc)
	if ctx.Err() != nil {
		// Stopping: a validation cut short is no verdict.
		return err
	}
	verdict := ""
	if err != nil {
		verdict = err.Error()
	}
	if verdict != m.verdict {
		m.verdict = verdict
		m.onChange(err)
	}
	return err
}

func (m *DriftMonitor) run(ctx context.Context) {
	defer close(m.done)
	logger := log.FromContext(ctx).WithValues("config", m.mc.Name)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-m.watcher.Events:
			if !ok {
				return
			}
			if m.tracked[ev.Name] {
				timer.Reset(driftDebounce)
			}
		case err, ok := <-m.watcher.Errors:
			if !ok {
				return
			}
			// Events may have been lost (queue overflow): validate anyway.
			logger.Error(err, "watching for config drift")
			timer.Reset(driftDebounce)
		case <-timer.C:
			if err := m.Check(ctx); err != nil && ctx.Err() == nil {
				logger.Info("config drift", "reason", err.Error())
			}
		}
	}
}
