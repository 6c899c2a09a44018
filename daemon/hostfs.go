package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/google/renameio/v2"

	"github.com/imagemode/imagemode/render/machineconfig"
)

// Directories of the daemon's backups (Appendix C of the reference): the original of a file a config
// overwrote is kept at OrigDir+<path>+OrigSuffix; a file that did not exist before a config wrote it is
// recorded by an empty stamp at NoOrigDir+<path>+NoOrigSuffix.
const (
	StateDir     = "/etc/machine-config-daemon"
	OrigDir      = StateDir + "/orig"
	NoOrigDir    = StateDir + "/noorig"
	OrigSuffix   = ".mcdorig"
	NoOrigSuffix = ".mcdnoorig"
)

// maxSymlinkHops bounds symlink resolution, as the kernel's ELOOP does.
const maxSymlinkHops = 40

// Root is a host filesystem seen through a directory: host path /etc/foo is <Root>/etc/foo. A real node's
// daemon uses "/" (or the host mounted at /rootfs); tests use t.TempDir(). Symlinks met on the way are
// resolved as if the root were "/", so none can lead out of it.
type Root string

// HostPath returns where host path p lies in the local filesystem.
func (r Root) HostPath(p string) string {
	return filepath.Join(string(r), filepath.FromSlash(p))
}

// Resolve returns the host path p leads to inside the root: p cleaned, with every symlink in its directories
// resolved as if the root were "/" (an absolute target restarts at the root, ".." stops at it). The last
// element is not followed: writes replace it. Components that do not exist are kept as they are.
func (r Root) Resolve(p string) (string, error) {
	if !path.IsAbs(p) {
		return "", fmt.Errorf("resolving %q: not an absolute path", p)
	}
	p = path.Clean(p)
	dir, base := path.Split(p)
	if base == "" {
		return "/", nil
	}
	rdir, err := r.resolveDir(dir)
	if err != nil {
		return "", fmt.Errorf("resolving %q: %w", p, err)
	}
	return path.Join(rdir, base), nil
}

func (r Root) resolveDir(dir string) (string, error) {
	pending := strings.Split(dir, "/")
	resolved := "/"
	hops := 0
	for len(pending) > 0 {
		part := pending[0]
		pending = pending[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			resolved = path.Dir(resolved)
			continue
		}
		next := path.Join(resolved, part)
		fi, err := os.Lstat(r.HostPath(next))
		if errors.Is(err, fs.ErrNotExist) {
			resolved = next
			continue
		}
		if err != nil {
			return "", fmt.Errorf("inspecting %s: %w", next, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		if hops++; hops > maxSymlinkHops {
			return "", fmt.Errorf("following %s: %w", next, syscall.ELOOP)
		}
		target, err := os.Readlink(r.HostPath(next))
		if err != nil {
			return "", fmt.Errorf("reading link %s: %w", next, err)
		}
		if path.IsAbs(target) {
			resolved = "/"
		}
		pending = append(strings.Split(target, "/"), pending...)
	}
	return resolved, nil
}

// managed cleans p, resolves it and checks both the path asked for and the path it leads to are paths
// configs may manage.
func (r Root) managed(p string) (string, error) {
	if path.IsAbs(p) {
		p = path.Clean(p)
	}
	if !machineconfig.ManagedPath(p) {
		return "", fmt.Errorf("%q: %w", p, ErrUnmanagedPath)
	}
	real, err := r.Resolve(p)
	if err != nil {
		return "", err
	}
	if !machineconfig.ManagedPath(real) {
		return "", fmt.Errorf("%q leads to %q: %w", p, real, ErrUnmanagedPath)
	}
	return real, nil
}

// WriteFile writes content to host path p atomically with the given permission bits and owner, keeping the
// original of a file it replaces for the first time (see WriteFrom).
func (r Root) WriteFile(p string, content []byte, mode fs.FileMode, uid, gid int) error {
	return r.WriteFrom(p, bytes.NewReader(content), mode, uid, gid)
}

// WriteFrom writes what src yields to host path p: p must be a path configs manage (render/machineconfig
// ManagedPath) both as given and once its directories' symlinks are resolved inside the root. Before the
// first write to a path, an existing file (or symlink) is copied to OrigDir, and a missing one is recorded in
// NoOrigDir. The content goes to a temporary file in the same directory which gets mode and owner before
// any content, is synced and then renamed over p, so p holds either the old or the whole new content; if
// src fails, p is untouched. Missing directories are created with mode 0755.
func (r Root) WriteFrom(p string, src io.Reader, mode fs.FileMode, uid, gid int) error {
	return r.writeFrom(p, src, mode, uid, gid, nil)
}

// writeFrom is WriteFrom; with b set, it works through b's opened root and directories and leaves the
// directory's sync to b.
func (r Root) writeFrom(p string, src io.Reader, mode fs.FileMode, uid, gid int, b *batch) error {
	w, err := r.stageFrom(p, src, mode, uid, gid, b)
	if err != nil {
		return err
	}
	if err := w.commit(b); err != nil {
		return fmt.Errorf("writing %s: %w", w.path, err)
	}
	return nil
}

// stageFrom does what writeFrom does up to the rename: the path checks, the backup, and the new content
// written and synced under a temporary name. Committing the result replaces the file; discarding it
// leaves the host as it was (the backup made for it is removed too).
func (r Root) stageFrom(p string, src io.Reader, mode fs.FileMode, uid, gid int, b *batch) (*pendingWrite, error) {
	if mode&^fs.ModePerm != 0 {
		return nil, fmt.Errorf("writing %s: mode %v: only permission bits are allowed", p, mode)
	}
	real, err := r.managed(p)
	if err != nil {
		return nil, fmt.Errorf("writing file: %w", err)
	}
	var root *os.Root
	if b != nil {
		root = b.root
	} else {
		if root, err = os.OpenRoot(string(r)); err != nil {
			return nil, fmt.Errorf("opening root: %w", err)
		}
		defer root.Close()
	}
	// The file's directory first: a file that cannot have one gets no backup either.
	_, release, err := dirIn(root, path.Dir(real), b)
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", real, err)
	}
	release()
	backup, err := backUpIn(root, real, b)
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", real, err)
	}
	w, err := stageWrite(root, real, src, mode, uid, gid, b)
	if err != nil {
		if backup != "" {
			err = errors.Join(err, removeBackup(root, backup))
		}
		return nil, fmt.Errorf("writing %s: %w", real, err)
	}
	w.backup = backup
	return w, nil
}

// RemoveFile undoes a config's file at host path p: the original kept in OrigDir is put back, or the file is
// deleted (a file recorded in NoOrigDir, or one written before backups were kept). Removing a file that is
// already gone is not an error.
func (r Root) RemoveFile(p string) error { return r.removeFile(p, nil) }

// removeFile is RemoveFile; with b set, it works through b's opened root and directories.
func (r Root) removeFile(p string, b *batch) error {
	real, err := r.managed(p)
	if err != nil {
		return fmt.Errorf("removing file: %w", err)
	}
	var root *os.Root
	if b != nil {
		root = b.root
	} else {
		if root, err = os.OpenRoot(string(r)); err != nil {
			return fmt.Errorf("opening root: %w", err)
		}
		defer root.Close()
	}
	orig, noorig := rel(OrigDir+real+OrigSuffix), rel(NoOrigDir+real+NoOrigSuffix)
	if b != nil {
		return b.removeFile(real, orig, noorig)
	}
	if fi, err := root.Lstat(orig); err == nil {
		if err := copyEntry(root, orig, fi, real, nil); err != nil {
			return fmt.Errorf("restoring %s: %w", real, err)
		}
		if err := root.Remove(orig); err != nil {
			return fmt.Errorf("removing backup of %s: %w", real, err)
		}
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("inspecting backup of %s: %w", real, err)
	}
	if err := root.Remove(rel(real)); err != nil && !missing(err) {
		return fmt.Errorf("removing %s: %w", real, err)
	}
	if err := root.Remove(noorig); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing stamp of %s: %w", real, err)
	}
	return nil
}

// missing reports whether err says a path is not there: it does not exist, or one of its directories is a
// file (ENOTDIR), as after a write that failed because of such a file.
func missing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// rel turns a host path into a path relative to the root.
func rel(p string) string {
	if p == "/" {
		return "."
	}
	return strings.TrimPrefix(p, "/")
}

// backUp keeps what is at real before its first write: a copy in OrigDir, or a stamp in NoOrigDir when
// nothing is there. The daemon's own state directory is not backed up.
func backUp(root *os.Root, real string) error {
	_, err := backUpIn(root, real, nil)
	return err
}

// backUpIn is backUp; with b set, the stamp's directory is opened once per batch. It returns the host path
// of the backup it made, "" when there was one already (or none is needed).
func backUpIn(root *os.Root, real string, b *batch) (string, error) {
	if strings.HasPrefix(real, StateDir+"/") {
		return "", nil
	}
	orig, noorig := OrigDir+real+OrigSuffix, NoOrigDir+real+NoOrigSuffix
	lstat := func(p string) (fs.FileInfo, error) { return root.Lstat(rel(p)) }
	if b != nil {
		lstat = b.lstat
	}
	for _, p := range []string{orig, noorig} {
		_, err := lstat(p)
		if err == nil {
			return "", nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("inspecting backup %s: %w", p, err)
		}
	}
	fi, err := lstat(real)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := writeStamp(root, noorig, b); err != nil {
			return "", fmt.Errorf("recording that it did not exist: %w", err)
		}
		return noorig, nil
	case err != nil:
		return "", fmt.Errorf("inspecting: %w", err)
	}
	if err := copyEntry(root, rel(real), fi, orig, nil); err != nil {
		return "", fmt.Errorf("backing up: %w", err)
	}
	return orig, nil
}

// removeBackup removes the backup at host path p, made for a write that did not happen.
func removeBackup(root *os.Root, p string) error {
	if err := root.Remove(rel(p)); err != nil && !missing(err) {
		return fmt.Errorf("removing backup %s: %w", p, err)
	}
	return nil
}

// writeStamp creates the empty file p. It is neither written atomically nor synced: it has no content to
// tear, and a stamp lost in a crash only means that the file it stands for is later removed by content (see
// removeStale) instead of by stamp. This saves two of the four fsyncs of a config's new file.
func writeStamp(root *os.Root, p string, b *batch) error {
	dir, release, err := dirIn(root, path.Dir(p), b)
	if err != nil {
		return err
	}
	defer release()
	f, err := dir.OpenFile(path.Base(p), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// copyEntry copies the regular file or symlink at fromRel (described by fi) to host path to, atomically,
// with its mode and owner; with b set, the directory's sync is left to b.
func copyEntry(root *os.Root, fromRel string, fi fs.FileInfo, to string, b *batch) error {
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := root.Readlink(fromRel)
		if err != nil {
			return fmt.Errorf("reading link: %w", err)
		}
		dir, release, err := dirIn(root, path.Dir(to), b)
		if err != nil {
			return err
		}
		defer release()
		if err := renameio.SymlinkRoot(dir, target, path.Base(to)); err != nil {
			return fmt.Errorf("linking %s: %w", to, err)
		}
		return nil
	case fi.Mode().IsRegular():
		f, err := root.Open(fromRel)
		if err != nil {
			return fmt.Errorf("opening: %w", err)
		}
		defer f.Close()
		uid, gid := fileOwner(fi)
		return writeAtomicDeferred(root, to, f, fi.Mode().Perm(), uid, gid, b)
	default:
		return fmt.Errorf("/%s is neither a regular file nor a symlink (mode %v)", fromRel, fi.Mode())
	}
}

// fileOwner returns the owner of a file described by Lstat, or the process's own IDs.
func fileOwner(fi fs.FileInfo) (int, int) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return os.Getuid(), os.Getgid()
}

// openDir creates the host directory dir (mode 0755) if needed and opens it as a root.
func openDir(root *os.Root, dir string) (*os.Root, error) {
	if err := root.MkdirAll(rel(dir), 0o755); err != nil {
		return nil, fmt.Errorf("creating directory %s: %w", dir, err)
	}
	d, err := root.OpenRoot(rel(dir))
	if err != nil {
		return nil, fmt.Errorf("opening directory %s: %w", dir, err)
	}
	return d, nil
}

// writeAtomic replaces host path p with what src yields: a temporary file in p's directory gets mode and
// owner first, then the content, is synced and renamed over p; the directory is synced last.
func writeAtomic(root *os.Root, p string, src io.Reader, mode fs.FileMode, uid, gid int) error {
	return writeAtomicDeferred(root, p, src, mode, uid, gid, nil)
}

// writeAtomicDeferred is writeAtomic; with b set, p's directory comes from b and is synced by b.flush.
func writeAtomicDeferred(root *os.Root, p string, src io.Reader, mode fs.FileMode, uid, gid int, b *batch) error {
	w, err := stageWrite(root, p, src, mode, uid, gid, b)
	if err != nil {
		return err
	}
	return w.commit(b)
}

// WriteSymlink replaces host path p with a symlink to target, atomically, with the same path checks and
// backups as WriteFrom (a unit is masked by a symlink to /dev/null this way).
func (r Root) WriteSymlink(p, target string) error {
	real, err := r.managed(p)
	if err != nil {
		return fmt.Errorf("linking file: %w", err)
	}
	root, err := os.OpenRoot(string(r))
	if err != nil {
		return fmt.Errorf("opening root: %w", err)
	}
	defer root.Close()
	if err := backUp(root, real); err != nil {
		return fmt.Errorf("linking %s: %w", real, err)
	}
	dir, err := openDir(root, path.Dir(real))
	if err != nil {
		return fmt.Errorf("linking %s: %w", real, err)
	}
	defer dir.Close()
	if err := renameio.SymlinkRoot(dir, target, path.Base(real)); err != nil {
		return fmt.Errorf("linking %s to %s: %w", real, target, err)
	}
	return nil
}

// Delete removes the file or symlink at host path p, with the same path checks and backups as WriteFrom, so
// that RemoveFile later puts back an original a config deleted. A path already gone is not an error.
func (r Root) Delete(p string) error {
	real, err := r.managed(p)
	if err != nil {
		return fmt.Errorf("deleting file: %w", err)
	}
	root, err := os.OpenRoot(string(r))
	if err != nil {
		return fmt.Errorf("opening root: %w", err)
	}
	defer root.Close()
	if _, err := root.Lstat(rel(real)); missing(err) {
		return nil
	}
	if err := backUp(root, real); err != nil {
		return fmt.Errorf("deleting %s: %w", real, err)
	}
	if err := root.Remove(rel(real)); err != nil && !missing(err) {
		return fmt.Errorf("deleting %s: %w", real, err)
	}
	return nil
}

// HasBackup reports whether a backup of host path p is recorded: an original in OrigDir or a stamp in
// NoOrigDir, that is, whether a config wrote p through this Root.
func (r Root) HasBackup(p string) (bool, error) {
	real, err := r.Resolve(p)
	if err != nil {
		return false, err
	}
	for _, b := range []string{OrigDir + real + OrigSuffix, NoOrigDir + real + NoOrigSuffix} {
		if _, err := os.Lstat(r.HostPath(b)); err == nil {
			return true, nil
		} else if !missing(err) {
			return false, fmt.Errorf("inspecting backup of %s: %w", real, err)
		}
	}
	return false, nil
}

// Lstat describes what is at host path p (its directories' symlinks resolved inside the root, the last
// element not followed).
func (r Root) Lstat(p string) (fs.FileInfo, error) {
	real, err := r.Resolve(p)
	if err != nil {
		return nil, err
	}
	return os.Lstat(r.HostPath(real))
}

// Readlink returns the target of the symlink at host path p.
func (r Root) Readlink(p string) (string, error) {
	real, err := r.Resolve(p)
	if err != nil {
		return "", err
	}
	return os.Readlink(r.HostPath(real))
}

// ReadFile returns the content of the regular file at host path p; a symlink there is not followed but an
// error.
func (r Root) ReadFile(p string) ([]byte, error) {
	real, err := r.Resolve(p)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(string(r))
	if err != nil {
		return nil, fmt.Errorf("opening root: %w", err)
	}
	defer root.Close()
	fi, err := root.Lstat(rel(real))
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("reading %s: not a regular file (mode %v)", real, fi.Mode())
	}
	return root.ReadFile(rel(real))
}

// writePrivate writes content to host path p atomically with mode and owner, without the ManagedPath check
// and without backups: for the fixed paths the daemon itself owns (the core user's ssh keys, /etc/shadow),
// which no config lists as a file. Symlinks in p's directories are still resolved inside the root. The
// directories in ownedDirs (host paths above p, outermost first) are created if missing and get mode
// dirMode and the owner.
func (r Root) writePrivate(p string, content []byte, mode fs.FileMode, uid, gid int, dirMode fs.FileMode, ownedDirs ...string) error {
	root, err := os.OpenRoot(string(r))
	if err != nil {
		return fmt.Errorf("opening root: %w", err)
	}
	defer root.Close()
	for _, d := range ownedDirs {
		real, err := r.Resolve(d)
		if err != nil {
			return err
		}
		if err := root.MkdirAll(rel(real), dirMode); err != nil {
			return fmt.Errorf("creating directory %s: %w", real, err)
		}
		if err := root.Lchown(rel(real), uid, gid); err != nil {
			return fmt.Errorf("changing owner of %s: %w", real, err)
		}
		if err := root.Chmod(rel(real), dirMode); err != nil {
			return fmt.Errorf("changing mode of %s: %w", real, err)
		}
	}
	real, err := r.Resolve(p)
	if err != nil {
		return err
	}
	if err := writeAtomic(root, real, bytes.NewReader(content), mode, uid, gid); err != nil {
		return fmt.Errorf("writing %s: %w", real, err)
	}
	return nil
}

// removePrivate deletes host path p without checks or backups (see writePrivate); missing is fine.
func (r Root) removePrivate(p string) error {
	real, err := r.Resolve(p)
	if err != nil {
		return err
	}
	if err := os.Remove(r.HostPath(real)); err != nil && !missing(err) {
		return fmt.Errorf("removing %s: %w", real, err)
	}
	return nil
}

// removeEmptyDir removes the host directory p if it is empty; anything else is left alone.
func (r Root) removeEmptyDir(p string) {
	real, err := r.Resolve(p)
	if err != nil || !machineconfig.ManagedPath(real) {
		return
	}
	if fi, err := os.Lstat(r.HostPath(real)); err != nil || !fi.IsDir() {
		return
	}
	_ = os.Remove(r.HostPath(real)) // fails harmlessly when the directory is not empty
}
