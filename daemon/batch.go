package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sync"
	"sync/atomic"
)

// applyWorkers bounds the goroutines that write (and fsync) a config's files at once. Concurrent fsyncs on
// one filesystem share journal commits, so a few dozen in flight cost little more than one.
const applyWorkers = 16

// batch carries what a run of file writes (a config's files) can share: the host root opened once, each
// directory opened once, and the directories whose entries changed, synced once each by flush instead of
// once per file. Each file is still synced before its rename, so a crash leaves every path with its old or
// its whole new content, never a torn one; flush runs before anything (systemd, the on-disk record) may
// depend on the new files. A batch is safe for concurrent use until flush.
type batch struct {
	host Root
	root *os.Root

	mu    sync.Mutex
	dirs  map[string]*os.Root
	syncs map[string]bool
}

// newBatch opens the root for a batch; flush closes it.
func (r Root) newBatch() (*batch, error) {
	root, err := os.OpenRoot(string(r))
	if err != nil {
		return nil, fmt.Errorf("opening root: %w", err)
	}
	return &batch{host: r, root: root, dirs: map[string]*os.Root{}, syncs: map[string]bool{}}, nil
}

// dirIn returns host directory dir opened under root (created with mode 0755 if needed) and the function
// that releases it: with b set, the directory is opened once per batch and released by b.flush, and the
// parents of the directories it creates are synced by b.flush.
func dirIn(root *os.Root, dir string, b *batch) (*os.Root, func(), error) {
	if b == nil {
		d, err := openDir(root, dir)
		if err != nil {
			return nil, nil, err
		}
		return d, func() { d.Close() }, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if d, ok := b.dirs[dir]; ok {
		return d, func() {}, nil
	}
	// The directories MkdirAll is about to create: their entries in their parents must be durable too.
	var created []string
	for p := dir; p != "/"; p = path.Dir(p) {
		if _, err := b.root.Lstat(rel(p)); !errors.Is(err, fs.ErrNotExist) {
			break
		}
		created = append(created, p)
	}
	d, err := openDir(root, dir)
	if err != nil {
		return nil, nil, err
	}
	for _, p := range created {
		b.syncs[path.Dir(p)] = true
	}
	b.dirs[dir] = d
	return d, func() {}, nil
}

// openedDir is dirIn's directory for host path dir if the batch already opened it, else opens it (without
// creating it) for the batch.
func (b *batch) openedDir(dir string) (*os.Root, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if d, ok := b.dirs[dir]; ok {
		return d, nil
	}
	d, err := b.root.OpenRoot(rel(dir))
	if err != nil {
		return nil, err
	}
	b.dirs[dir] = d
	return d, nil
}

// needSync records that host directory dir's entries changed: flush syncs it.
func (b *batch) needSync(dir string) {
	b.mu.Lock()
	b.syncs[dir] = true
	b.mu.Unlock()
}

// lstat describes host path p, which must have been resolved inside the root (its directories hold no
// symlinks): one system call instead of a walk through the root. It serves the read-only checks of the
// backups, whose directories belong to the daemon; writes and removals still go through the root.
func (b *batch) lstat(p string) (fs.FileInfo, error) {
	return os.Lstat(b.host.HostPath(p))
}

// removeFile is Root.RemoveFile of the resolved host path real (orig and noorig are its backup paths
// relative to the root), removing through directories opened once per batch; the directory of real is
// synced by flush.
func (b *batch) removeFile(real, orig, noorig string) error {
	if fi, err := b.lstat("/" + orig); err == nil {
		if err := copyEntry(b.root, orig, fi, real, b); err != nil {
			return fmt.Errorf("restoring %s: %w", real, err)
		}
		if err := b.root.Remove(orig); err != nil {
			return fmt.Errorf("removing backup of %s: %w", real, err)
		}
		return nil
	} else if !missing(err) {
		return fmt.Errorf("inspecting backup of %s: %w", real, err)
	}
	if err := b.remove(real); err != nil && !missing(err) {
		return fmt.Errorf("removing %s: %w", real, err)
	}
	b.needSync(path.Dir(real))
	if err := b.remove("/" + noorig); err != nil && !missing(err) {
		return fmt.Errorf("removing stamp of %s: %w", real, err)
	}
	return nil
}

// remove removes host path p through its directory, opened (not created) once per batch.
func (b *batch) remove(p string) error {
	d, err := b.openedDir(path.Dir(p))
	if err != nil {
		return err
	}
	return d.Remove(path.Base(p))
}

// flush syncs the directories whose entries changed, in parallel, and closes what the batch opened. The
// batch cannot be used after.
func (b *batch) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	dirs := make([]string, 0, len(b.syncs))
	for dir := range b.syncs {
		dirs = append(dirs, dir)
	}
	errs := make([]error, len(dirs))
	forEach(len(dirs), applyWorkers, func(i int) error {
		f, err := b.root.Open(rel(dirs[i]))
		if err == nil {
			err = f.Sync()
			f.Close()
		}
		if err != nil && !missing(err) {
			errs[i] = fmt.Errorf("syncing directory %s: %w", dirs[i], err)
		}
		return nil
	})
	for _, d := range b.dirs {
		d.Close()
	}
	b.root.Close()
	b.dirs, b.syncs = nil, nil
	return errors.Join(errs...)
}

// forEach calls f(i) for every i in [0, n) on up to workers goroutines. Once a call fails no further index
// is started; it returns the error of the lowest index that failed, so the error does not depend on the
// goroutines' timing.
func forEach(n, workers int, f func(i int) error) error {
	if n == 0 {
		return nil
	}
	workers = min(workers, n)
	errs := make([]error, n)
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if errs[i] = f(i); errs[i] != nil {
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
