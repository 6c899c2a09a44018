package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
)

// benchFiles is the size of the benchmark's config (the Benchmark section).
const benchFiles = 1000

// benchConfig returns the paths of n files spread over 20 directories under /etc and /var, and their
// content.
func benchConfig(n int) ([]string, []byte) {
	paths := make([]string, n)
	for i := range paths {
		top := "/etc"
		if i%2 == 1 {
			top = "/var/lib"
		}
		paths[i] = fmt.Sprintf("%s/bench/d%d/file-%04d.conf", top, i%10, i)
	}
	content := []byte("key=value\nanother=line of a small configuration file\n")
	return paths, content
}

// BenchmarkApply applies a config of 1,000 files to a fresh temporary root and removes them again (apply
// of an empty config), and compares with plain os.WriteFile of the same files (and with os.WriteFile plus
// the fsyncs an atomic write needs) in the same run. Reported: ns/file for the apply+remove cycle,
// writefile-ns/file, ratio (apply+remove over plain writes) and ratio-synced.
func BenchmarkApply(b *testing.B) {
	paths, content := benchConfig(benchFiles)
	opts := make([]cfgOpt, 0, len(paths))
	for _, p := range paths {
		opts = append(opts, withFile(p, plainURL(string(content)), func(f *ign3types.File) {
			f.User.Name, f.Group.Name = ptr("core"), ptr("core")
		}))
	}
	full := newMC(b, "rendered-bench-1", opts...)
	empty := newMC(b, "rendered-bench-2")
	ctx := context.Background()
	sd := newFakeSystemd()

	var applyTotal, plainTotal, syncedTotal time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		root := benchRoot(b)
		b.StartTimer()
		start := time.Now()
		if err := ApplyConfig(ctx, root, sd, nil, full, ApplyOptions{}); err != nil {
			b.Fatal(err)
		}
		if err := ApplyConfig(ctx, root, sd, full, empty, ApplyOptions{}); err != nil {
			b.Fatal(err)
		}
		applyTotal += time.Since(start)
		b.StopTimer()
		if _, err := os.Stat(root.HostPath(paths[0])); !os.IsNotExist(err) {
			b.Fatalf("%s still there after removal: %v", paths[0], err)
		}
		plainTotal += plainWrites(b, paths, content, false)
		syncedTotal += plainWrites(b, paths, content, true)
		b.StartTimer()
	}
	b.StopTimer()
	perFile := float64(applyTotal.Nanoseconds()) / float64(b.N*benchFiles)
	plain := float64(plainTotal.Nanoseconds()) / float64(b.N*benchFiles)
	synced := float64(syncedTotal.Nanoseconds()) / float64(b.N*benchFiles)
	b.ReportMetric(perFile, "ns/file")
	b.ReportMetric(plain, "writefile-ns/file")
	b.ReportMetric(synced, "writefile-synced-ns/file")
	b.ReportMetric(perFile/plain, "ratio")
	b.ReportMetric(perFile/synced, "ratio-synced")
}

// benchRoot is a fresh host root with the core user in /etc/passwd and /etc/group.
func benchRoot(b *testing.B) Root {
	dir := b.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		b.Fatal(err)
	}
	uid, gid := os.Getuid(), os.Getgid()
	if err := os.WriteFile(filepath.Join(dir, "etc/passwd"), fmt.Appendf(nil, "root:x:0:0::/root:/bin/sh\ncore:x:%d:%d::/var/home/core:/bin/sh\n", uid, gid), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/group"), fmt.Appendf(nil, "root:x:0:\ncore:x:%d:\n", gid), 0o644); err != nil {
		b.Fatal(err)
	}
	return Root(dir)
}

// plainWrites writes every file with os.WriteFile under a fresh directory (creating directories as needed)
// and removes them again, optionally syncing each file and its directory; it returns the time taken.
func plainWrites(b *testing.B, paths []string, content []byte, sync bool) time.Duration {
	dir := b.TempDir()
	start := time.Now()
	for _, p := range paths {
		local := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(local, content, 0o644); err != nil {
			b.Fatal(err)
		}
		if sync {
			syncPath(b, local)
			syncPath(b, filepath.Dir(local))
		}
	}
	for _, p := range paths {
		if err := os.Remove(filepath.Join(dir, p)); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

func syncPath(b *testing.B, p string) {
	f, err := os.Open(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
}
