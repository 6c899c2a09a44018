package daemon

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// driftWait bounds every wait for the monitor; the monitor answers within its debounce when all is well.
const driftWait = 10 * time.Second

func TestDriftMonitor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := setUpRoot(t, osFiles())
	sd := newFakeSystemd()
	mc := validatedConfig(t)
	require.NoError(t, ApplyConfig(ctx, r, sd, nil, mc, ApplyOptions{}))
	sd.takeCalls()

	changes := make(chan error, 10)
	m, err := StartDriftMonitor(ctx, r, sd, mc, func(err error) { changes <- err })
	require.NoError(t, err)
	defer m.Stop()
	validations := func() int {
		n := 0
		for _, c := range sd.takeCalls() {
			if c == "is-enabled a.service" {
				n++
			}
		}
		return n
	}
	require.Equal(t, 1, validations(), "validated once when starting")
	next := func(what string) error {
		t.Helper()
		select {
		case err := <-changes:
			return err
		case <-time.After(driftWait):
			t.Fatalf("no report after %s", what)
			return nil
		}
	}
	expectDrift := func(what, path, msg string) {
		t.Helper()
		err := next(what)
		var drift *DriftError
		require.True(t, errors.As(err, &drift), "%s: a DriftError, got %v", what, err)
		assert.Equal(t, path, drift.Path, what)
		assert.Contains(t, err.Error(), msg, what)
	}

	writeHost(t, r, "/etc/foo", "edited by hand\n", 0o644)
	expectDrift("editing /etc/foo", "/etc/foo", `content mismatch for file "/etc/foo"`)

	writeHost(t, r, "/etc/foo", "foo\n", 0o644)
	require.NoError(t, next("restoring /etc/foo"), "back to nil")

	require.NoError(t, os.Chmod(r.HostPath("/etc/bar"), 0o644))
	expectDrift("chmod /etc/bar", "/etc/bar", `mode mismatch for file: "/etc/bar"; expected: -rw-------; received: -rw-r--r--`)

	require.NoError(t, os.Chmod(r.HostPath("/etc/bar"), 0o600))
	require.NoError(t, next("chmod /etc/bar back"))

	require.NoError(t, os.Remove(r.HostPath(UnitPath("m.service"))))
	expectDrift("unmasking m.service", UnitPath("m.service"), "expected masked")
	require.NoError(t, os.Symlink("/dev/null", r.HostPath(UnitPath("m.service"))))
	require.NoError(t, next("masking m.service again"))

	// An atomic replace (rename over the file) is seen too.
	require.NoError(t, os.WriteFile(r.HostPath("/etc/.foo.tmp"), []byte("replaced\n"), 0o644))
	require.NoError(t, os.Rename(r.HostPath("/etc/.foo.tmp"), r.HostPath("/etc/foo")))
	expectDrift("replacing /etc/foo", "/etc/foo", "content mismatch")
	require.NoError(t, r.WriteFile("/etc/foo", []byte("foo\n"), 0o644, 0, 0))
	require.NoError(t, next("rewriting /etc/foo"))

	// Files of the config's directories that the config does not list are not watched.
	validations()
	writeHost(t, r, "/etc/unrelated.conf", "x", 0o644)
	require.NoError(t, os.Chmod(r.HostPath("/etc/unrelated.conf"), 0o600))
	require.NoError(t, os.Remove(r.HostPath("/etc/unrelated.conf")))
	assert.Never(t, func() bool { return len(changes) > 0 || validations() > 0 }, 5*driftDebounce, driftDebounce/5,
		"no validation for an unrelated file")

	// Check reports a changed verdict like an event does, and returns it.
	require.NoError(t, m.Check(ctx))
	m.Stop()
	m.Stop()
	writeHost(t, r, "/etc/foo", "after stop\n", 0o644)
	err = m.Check(ctx)
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "content mismatch"))
	require.Len(t, changes, 1)
	assert.Equal(t, err, <-changes)
}

func TestDriftMonitorStopsWithContext(t *testing.T) {
	t.Parallel()
	r := setUpRoot(t, osFiles())
	sd := newFakeSystemd()
	mc := validatedConfig(t)
	require.NoError(t, ApplyConfig(context.Background(), r, sd, nil, mc, ApplyOptions{}))
	ctx, cancel := context.WithCancel(context.Background())
	m, err := StartDriftMonitor(ctx, r, sd, mc, func(error) { t.Error("no report expected") })
	require.NoError(t, err)
	cancel()
	select {
	case <-m.done:
	case <-time.After(driftWait):
		t.Fatal("the monitor did not stop with its context")
	}
	m.Stop()
}
