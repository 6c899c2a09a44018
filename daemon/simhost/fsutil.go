package simhost

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/google/renameio/v2"
	"go.podman.io/storage/pkg/archive"
	"golang.org/x/sys/unix"
)

// mergeEtc merges the /etc of a new deployment (newEtc) into the node's (nodeEtc) the ostree way, knowing
// the /etc of the deployment booted so far (oldEtc; "" on first boot):
//
//   - a file (or symlink) the node has as the old deployment shipped it is replaced by the new one's;
//   - one the node changed, added, or deleted locally stays as the node has it;
//   - one the old deployment had and the new one lacks is removed unless the node changed it;
//   - missing directories are created with the image's mode.
func mergeEtc(oldEtc, newEtc, nodeEtc string) error {
	if err := os.MkdirAll(nodeEtc, 0o755); err != nil {
		return err
	}
	err := filepath.WalkDir(newEtc, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == newEtc {
				return filepath.SkipDir // an image without /etc
			}
			return err
		}
		rel, err := filepath.Rel(newEtc, p)
		if err != nil || rel == "." {
			return err
		}
		node := filepath.Join(nodeEtc, rel)
		nodeInfo, nodeErr := os.Lstat(node)
		if nodeErr != nil && !errors.Is(nodeErr, fs.ErrNotExist) {
			return nodeErr
		}
		if d.IsDir() {
			if nodeErr == nil {
				if !nodeInfo.IsDir() {
					return filepath.SkipDir // replaced locally by something else: kept
				}
				return nil
			}
			return mkdirLike(p, node)
		}
		var oldPath string
		if oldEtc != "" {
			oldPath = filepath.Join(oldEtc, rel)
		}
		oldExists := oldPath != "" && lexists(oldPath)
		switch {
		case nodeErr != nil && oldExists: // deleted locally
			return nil
		case nodeErr != nil: // new in the image
			return installEntry(p, node)
		case !oldExists: // added locally (or before the first boot)
			return nil
		}
		modified, err := differ(node, oldPath)
		if err != nil || modified {
			return err
		}
		if changed, err := differ(node, p); err != nil || !changed {
			return err
		}
		return installEntry(p, node)
	})
	if err != nil || oldEtc == "" {
		return err
	}
	return filepath.WalkDir(oldEtc, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == oldEtc {
				return filepath.SkipDir
			}
			return err
		}
		rel, err := filepath.Rel(oldEtc, p)
		if err != nil || rel == "." || d.IsDir() || lexists(filepath.Join(newEtc, rel)) {
			return err
		}
		node := filepath.Join(nodeEtc, rel)
		if !lexists(node) {
			return nil
		}
		if modified, err := differ(node, p); err != nil || modified {
			return err
		}
		return os.Remove(node)
	})
}

// lexists reports whether p exists (not followed).
func lexists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// differ reports whether two entries differ in type, permission bits, content or link target.
func differ(a, b string) (bool, error) {
	ai, err := os.Lstat(a)
	if err != nil {
		return false, err
	}
	bi, err := os.Lstat(b)
	if err != nil {
		return false, err
	}
	if ai.Mode().Type() != bi.Mode().Type() {
		return true, nil
	}
	switch {
	case ai.Mode()&fs.ModeSymlink != 0:
		at, err := os.Readlink(a)
		if err != nil {
			return false, err
		}
		bt, err := os.Readlink(b)
		if err != nil {
			return false, err
		}
		return at != bt, nil
	case ai.Mode().IsRegular():
		if ai.Mode().Perm() != bi.Mode().Perm() || ai.Size() != bi.Size() {
			return true, nil
		}
		ac, err := os.ReadFile(a)
		if err != nil {
			return false, err
		}
		bc, err := os.ReadFile(b)
		if err != nil {
			return false, err
		}
		return !bytes.Equal(ac, bc), nil
	default:
		return ai.Mode() != bi.Mode(), nil
	}
}

// installEntry copies the regular file or symlink src to dst atomically, with its mode and owner.
func installEntry(src, dst string) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return renameio.Symlink(target, dst)
	case fi.Mode().IsRegular():
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		pf, err := renameio.NewPendingFile(dst, renameio.WithStaticPermissions(fi.Mode().Perm()))
		if err != nil {
			return err
		}
		defer pf.Cleanup() //nolint:errcheck // a no-op after the replace
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
			if err := pf.Chown(int(st.Uid), int(st.Gid)); err != nil {
				return err
			}
			if err := pf.Chmod(fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)); err != nil {
				return err
			}
		}
		if _, err := io.Copy(pf, in); err != nil {
			return err
		}
		return pf.CloseAtomicallyReplace()
	default:
		return fmt.Errorf("%s: not a regular file or symlink (mode %v)", src, fi.Mode())
	}
}

// mkdirLike creates directory dst with src's permission bits and owner.
func mkdirLike(src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
		if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	return os.Chmod(dst, fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
}

// topLevelOwn lists the root's entries Boot manages otherwise (or never touches).
var topLevelOwn = map[string]bool{"usr": true, "etc": true, "var": true, "run": true}

// setUpTopLevel creates, once, the image's other top-level entries (bin → usr/bin links, /tmp, /sysroot…)
// the root lacks, as the image has them.
func setUpTopLevel(tree, root string) error {
	entries, err := os.ReadDir(tree)
	if err != nil {
		return fmt.Errorf("listing image root: %w", err)
	}
	for _, e := range entries {
		if topLevelOwn[e.Name()] || lexists(filepath.Join(root, e.Name())) {
			continue
		}
		src, dst := filepath.Join(tree, e.Name()), filepath.Join(root, e.Name())
		switch {
		case e.Type()&fs.ModeSymlink != 0, e.Type().IsRegular():
			err = installEntry(src, dst)
		case e.IsDir():
			err = archive.NewDefaultArchiver().CopyWithTar(src, dst)
		}
		if err != nil {
			return fmt.Errorf("setting up /%s: %w", e.Name(), err)
		}
	}
	return nil
}

// emptyDir removes everything in dir, creating it when missing.
func emptyDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// writeFileAtomic replaces path with data (temporary file, fsync, rename).
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	return renameio.WriteFile(path, data, perm, renameio.WithStaticPermissions(perm))
}

// syncfs flushes the filesystem holding f.
func syncfs(f *os.File) error {
	return unix.Syncfs(int(f.Fd()))
}
