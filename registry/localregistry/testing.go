package localregistry

import (
	"context"
	"testing"
)

// StartForTest starts a registry in a temporary directory and stops it when the test ends. Skipped under
// -short; a registry that cannot start fails the test.
func StartForTest(t testing.TB) *Registry {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs a real registry (skipped with -short)")
	}
	r, err := Start(context.Background(), Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("starting local registry: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Errorf("stopping local registry: %v", err)
		}
	})
	return r
}
