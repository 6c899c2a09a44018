package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
)

// batch carries what a run of file writes (a config's files) can share: the host root opened once, each
// directory opened once, and the directories whose renames still need a sync, synced once each by flush
// instead of once per file. Each file is still synced before its rename, so a crash leaves every path
// with its old or its whole new content, never a torn one; flush runs before anything (systemd, the
// on-disk record) may depend on the new files.
type batch struct {
	host  Root
	root  *os.Root
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
// that releases it: with b set, the directory is opened once per batch and released by b.flush.
func dirIn(root *os.Root, dir string, b *batch) (*os.Root, func(), error) {
	if b == nil {
		d, err := openDir(root, dir)
		if err != nil {
			return nil, nil, err
		}
		return d, func() { d.Close() }, nil
	}
	if d, ok := b.dirs[dir]; ok {
		return d, func() {}, nil
	}
	d, err := openDir(root, dir)
	if err != nil {
		return nil, nil, err
	}
	b.dirs[dir] = d
	return d, func() {}, nil
}

// lstat describes host path p, which must have been resolved inside the root (its directories hold no
// symlinks): one system call instead of a walk through the root. It serves the read-only checks of the
// backups, whose directories belong to the daemon; writes and removals still go through the root.
func (b *batch) lstat(p string) (fs.FileInfo, error) {
	return os.Lstat(b.host.HostPath(p))
}

// removeFile is Root.RemoveFile of the resolved host path real (orig and noorig are its backup paths
// relative to the root), removing through directories opened once per batch.
func (b *batch) removeFile(real, orig, noorig string) error {
	if fi, err := b.lstat("/" + orig); err == nil {
		if err := restore(b.root, orig, fi, real); err != nil {
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
	if err := b.remove("/" + noorig); err != nil && !missing(err) {
		return fmt.Errorf("removing stamp of %s: %w", real, err)
	}
	return nil
}

// remove removes host path p through its directory, opened (not created) once per batch.
func (b *batch) remove(p string) error {
	dir := path.Dir(p)
	d, ok := b.dirs[dir]
	if !ok {
		var err error
		if d, err = b.root.OpenRoot(rel(dir)); err != nil {
			return err
		}
		b.dirs[dir] = d
	}
	return d.Remove(path.Base(p))
}

// flush syncs the directories written to and closes what the batch opened. The batch cannot be used after.
func (b *batch) flush() error {
	var errs []error
	for dir := range b.syncs {
		d, ok := b.dirs[dir]
		if !ok {
			continue
		}
		f, err := d.Open(".")
		if err == nil {
			err = f.Sync()
			f.Close()
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("syncing directory %s: %w", dir, err))
		}
	}
	for _, d := range b.dirs {
		d.Close()
	}
	b.root.Close()
	b.dirs, b.syncs = nil, nil
	return errors.Join(errs...)
}
