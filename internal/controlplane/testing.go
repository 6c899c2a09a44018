package controlplane

import (
	"context"
	"testing"
)

// Start starts a control plane for a test and stops it when the test ends. Integration tests are skipped
// under -short; otherwise a control plane that cannot start fails the test (it is never silently skipped).
func Start(t testing.TB, opts Options) *ControlPlane {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs a real control plane (skipped with -short)")
	}
	if opts.WorkDir == "" {
		opts.WorkDir = t.TempDir()
	}
	cp, err := New(context.Background(), opts)
	if err != nil {
		t.Fatalf("starting control plane: %v", err)
	}
	t.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			t.Errorf("stopping control plane: %v", err)
		}
	})
	return cp
}
