package daemon

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
)

// pendingWrite is a file's new content written and synced under a temporary name in its directory, not yet
// renamed over the file: ApplyConfig writes every file of a config this way before it replaces the first,
// so a write that fails (a full disk) leaves every file as it was.
type pendingWrite struct {
	// path is the host path to replace, dir its directory (released by release), tmp the temporary
	// file's name in dir.
	path    string
	dir     *os.Root
	release func()
	tmp     string
	// backup is the host path of the backup made for this write ("" if none was), removed by discard.
	backup string
}

// stageWrite writes what src yields to a temporary file in the directory of host path p (created with mode
// 0755 if needed): the file gets mode and owner before any content, then the content, and is synced and
// closed. With b set, the directory comes from b.
func stageWrite(root *os.Root, p string, src io.Reader, mode fs.FileMode, uid, gid int, b *batch) (*pendingWrite, error) {
	dir, release, err := dirIn(root, path.Dir(p), b)
	if err != nil {
		return nil, err
	}
	w := &pendingWrite{path: p, dir: dir, release: release}
	f, err := w.create(path.Base(p))
	if err != nil {
		release()
		return nil, fmt.Errorf("creating temporary file: %w", err)
	}
	if err := fill(f, src, mode, uid, gid); err != nil {
		f.Close()
		w.discard(nil)
		return nil, err
	}
	if err := f.Close(); err != nil {
		w.discard(nil)
		return nil, fmt.Errorf("closing temporary file: %w", err)
	}
	return w, nil
}

// create makes a new, empty temporary file for base (mode 0600): ".<base>.<random>.mcdtmp".
func (w *pendingWrite) create(base string) (*os.File, error) {
	for range 10 {
		var r [6]byte
		_, _ = rand.Read(r[:]) // never fails (crypto/rand)
		name := "." + base + "." + hex.EncodeToString(r[:]) + ".mcdtmp"
		f, err := w.dir.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		w.tmp = name
		return f, nil
	}
	return nil, errors.New("no free temporary name")
}

// fill gives the open temporary file f its owner and mode, then the content, and syncs it.
func fill(f *os.File, src io.Reader, mode fs.FileMode, uid, gid int) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("inspecting temporary file: %w", err)
	}
	if curUID, curGID := fileOwner(fi); curUID != uid || curGID != gid {
		if err := f.Chown(uid, gid); err != nil {
			return fmt.Errorf("changing owner to %d:%d: %w", uid, gid, bare(err))
		}
	}
	// Set after the owner: changing the owner may clear permission bits on some filesystems.
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("changing mode: %w", bare(err))
	}
	if _, err := io.Copy(f, src); err != nil {
		return fmt.Errorf("writing content: %w", bare(err))
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing content: %w", bare(err))
	}
	return nil
}

// bare strips the temporary file's name from a system call's error ("no space left on device"): the
// caller names the file being written.
func bare(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}

// commit renames the temporary file over the file and releases the directory. The rename is made durable
// by syncing the directory: now, or with b set by b.flush.
func (w *pendingWrite) commit(b *batch) error {
	defer w.release()
	if err := w.dir.Rename(w.tmp, path.Base(w.path)); err != nil {
		_ = w.dir.Remove(w.tmp)
		return fmt.Errorf("replacing: %w", err)
	}
	if b != nil {
		b.needSync(path.Dir(w.path))
		return nil
	}
	d, err := w.dir.Open(".")
	if err != nil {
		return fmt.Errorf("opening directory to sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory: %w", err)
	}
	return nil
}

// discard removes the temporary file and, with b set, the backup made for the write, and releases the
// directory: the file stays as it was.
func (w *pendingWrite) discard(b *batch) error {
	defer w.release()
	var errs []error
	if err := w.dir.Remove(w.tmp); err != nil && !missing(err) {
		errs = append(errs, fmt.Errorf("removing temporary file of %s: %w", w.path, err))
	}
	if b != nil && w.backup != "" {
		errs = append(errs, removeBackup(b.root, w.backup))
	}
	return errors.Join(errs...)
}
