package daemon

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestForEach(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		n       int
		workers int
		fail    map[int]bool
		wantErr string
	}{
		{name: "none", n: 0, workers: 4},
		{name: "all succeed", n: 100, workers: 8},
		{name: "more workers than items", n: 3, workers: 32},
		{name: "one fails", n: 50, workers: 4, fail: map[int]bool{17: true}, wantErr: "item 17"},
		{name: "lowest failed index wins", n: 50, workers: 1, fail: map[int]bool{5: true, 3: true}, wantErr: "item 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int64
			seen := make([]atomic.Bool, tt.n)
			err := forEach(tt.n, tt.workers, func(i int) error {
				calls.Add(1)
				require.False(t, seen[i].Swap(true), "index %d called twice", i)
				if tt.fail[i] {
					return fmt.Errorf("item %d", i)
				}
				return nil
			})
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.EqualValues(t, tt.n, calls.Load())
				return
			}
			require.EqualError(t, err, tt.wantErr)
		})
	}
}

// TestApplyConfigFailedWriteChangesNothing: when one file of a config cannot be written, no file is replaced,
// no temporary file and no backup made for the attempt stays, and the previous config's files are intact
// (the full-disk case on a real filesystem is TestDiskFullWhileWritingFiles in daemon/simnode).
func TestApplyConfigFailedWriteChangesNothing(t *testing.T) {
	t.Parallel()
	root := setUpRoot(t, osFiles())
	old := newMC(t, "rendered-1", withFile("/etc/a/one.conf", plainURL("old one")), withFile("/etc/b/two.conf", plainURL("old two")))
	require.NoError(t, ApplyConfig(context.Background(), root, newFakeSystemd(), nil, old, ApplyOptions{}))

	// /etc/blocked is a regular file: nothing can be written under it.
	require.NoError(t, os.WriteFile(root.HostPath("/etc/blocked"), []byte("x"), 0o644))
	before := snapshot(t, root)
	var opts []cfgOpt
	for i := range 40 {
		opts = append(opts, withFile(fmt.Sprintf("/etc/a/new-%02d.conf", i), plainURL("new")))
	}
	opts = append(opts, withFile("/etc/a/one.conf", plainURL("new one")), withFile("/etc/blocked/x.conf", plainURL("x")),
		withFile("/etc/b/two.conf", plainURL("new two")))
	new := newMC(t, "rendered-2", opts...)
	err := ApplyConfig(context.Background(), root, newFakeSystemd(), old, new, ApplyOptions{})
	require.ErrorContains(t, err, "file /etc/blocked/x.conf")
	require.NotContains(t, err.Error(), "rolling back", "nothing changed: nothing to roll back")
	require.Equal(t, before, snapshot(t, root))
}
