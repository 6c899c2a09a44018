package buildcmd

import (
	"errors"
	"testing"
)

// TestLockCache: one build at a time holds the layer cache; a second finds it busy at once, and may take it
// once the first lets go.
func TestLockCache(t *testing.T) {
	root := t.TempDir()
	unlock, err := lockCache(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockCache(root); !errors.Is(err, errCacheBusy) {
		t.Fatalf("second lock: %v, want errCacheBusy", err)
	}
	unlock()
	unlock2, err := lockCache(root)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
}
