package layering

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Context directories.
const (
	// filesDir holds one directory per COPY step.
	filesDir = "files"
	// emptyDir is copied, root-owned, onto the destination of a non-root COPY first: it creates a missing
	// destination root-owned (as Ignition creates missing parents) and leaves an existing one alone.
	emptyDir = filesDir + "/empty"
)

// copyStep is one `COPY --chown=<uid>:<gid> <src>/ <dest>`.
type copyStep struct {
	src      string // context directory
	dest     string // image directory, with a trailing slash
	uid, gid int
}

// group is the entries one COPY step carries: those below dest with one owner, each in a chain of
// directories declared with that owner up to dest.
type group struct {
	dest     string // absolute image directory
	uid, gid int
	entries  []*entry
}

// layout lays entries out in the context, one directory per COPY step. A COPY of `dir/` onto a directory
// sets the mode and owner of every directory in dir, so no directory the config does not declare may be in
// one: each entry goes to the COPY of the nearest directory above it that is not declared with the same
// owner, and that directory is the COPY's destination. Destinations are copied parents first.
func layout(entries []*entry) ([]copyStep, []ContextFile, error) {
	byPath := make(map[string]*entry, len(entries))
	for _, e := range entries {
		byPath[e.path] = e
	}
	type key struct {
		dest     string
		uid, gid int
	}
	groups := map[key]*group{}
	for _, e := range entries {
		top := e
		for {
			parent, ok := byPath[path.Dir(top.path)]
			if !ok || !parent.isDir() || parent.uid != e.uid || parent.gid != e.gid {
				break
			}
			top = parent
		}
		k := key{path.Dir(top.path), e.uid, e.gid}
		if !safeCopyDest(k.dest) {
			return nil, nil, fieldErrorf(top.field, "directory %q cannot be a COPY destination: use letters, digits and ._-@+,=~:%% only", k.dest)
		}
		g, ok := groups[k]
		if !ok {
			g = &group{dest: k.dest, uid: e.uid, gid: e.gid}
			groups[k] = g
		}
		g.entries = append(g.entries, e)
	}
	sorted := make([]*group, 0, len(groups))
	for _, g := range groups {
		sorted = append(sorted, g)
	}
	slices.SortFunc(sorted, func(a, b *group) int {
		return cmp.Or(strings.Compare(a.dest, b.dest), cmp.Compare(a.uid, b.uid), cmp.Compare(a.gid, b.gid))
	})

	width := max(2, len(strconv.Itoa(len(sorted)-1)))
	dir := func(p string) ContextFile { return ContextFile{Path: p, Mode: fs.ModeDir | 0o755} }
	files := []ContextFile{dir(filesDir)}
	var steps []copyStep
	rootDest := map[string]bool{} // destinations a root-owned COPY creates
	for i, g := range sorted {
		if g.uid != 0 || g.gid != 0 {
			if declared, ok := byPath[g.dest]; (!ok || !declared.isDir()) && !rootDest[g.dest] {
				files = append(files, dir(emptyDir)) // once, after compaction below
				steps = append(steps, copyStep{src: emptyDir, dest: slashed(g.dest)})
				rootDest[g.dest] = true
			}
		} else {
			rootDest[g.dest] = true
		}
		src := fmt.Sprintf("%s/%0*d", filesDir, width, i)
		steps = append(steps, copyStep{src: src, dest: slashed(g.dest), uid: g.uid, gid: g.gid})
		files = append(files, dir(src))
		for _, e := range g.entries {
			rel := strings.TrimPrefix(strings.TrimPrefix(e.path, g.dest), "/")
			files = append(files, ContextFile{Path: src + "/" + rel, Mode: e.mode, UID: e.uid, GID: e.gid, Content: e.data, Target: e.target})
		}
	}
	slices.SortFunc(files, func(a, b ContextFile) int { return strings.Compare(a.Path, b.Path) })
	files = slices.CompactFunc(files, func(a, b ContextFile) bool { return a.Path == b.Path })
	return steps, files, nil
}

func slashed(dir string) string {
	if dir == "/" {
		return dir
	}
	return dir + "/"
}

// safeCopyDest reports whether dir can be written in a COPY line as is: no space, quote, `$` (variable
// expansion) or backslash (escapes).
func safeCopyDest(dir string) bool {
	for _, c := range dir {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.ContainsRune("/._-@+,=~:%", c):
		default:
			return false
		}
	}
	return true
}

// WriteDir writes the build context (the Containerfile as ContainerfileName, and Files) into dir, which must
// be empty or absent. Entries get their modes exactly and the same timestamp (the Unix epoch, as in an
// ostree commit), so the same context always gives the same layer. The context is written to a temporary
// directory next to dir and renamed into place: on error no partial context is left behind.
func (b *BuildContext) WriteDir(dir string) (err error) {
	if existing, rerr := os.ReadDir(dir); rerr == nil && len(existing) > 0 {
		return fmt.Errorf("writing build context to %s: the directory is not empty", dir)
	} else if rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		return fmt.Errorf("writing build context to %s: %w", dir, rerr)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("writing build context to %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err := b.writeEntries(tmp); err != nil {
		return fmt.Errorf("writing build context to %s: %w", dir, err)
	}
	// os.Rename does not replace a directory, even an empty one.
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("writing build context to %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("writing build context to %s: %w", dir, err)
	}
	return nil
}

// writeEntries writes the context into root, then fixes directory modes (a directory may not be writable)
// and timestamps, children first.
func (b *BuildContext) writeEntries(root string) error {
	all := append([]ContextFile{{Path: ContainerfileName, Mode: 0o644, Content: b.Containerfile}}, b.Files...)
	for _, f := range all {
		if !fs.ValidPath(f.Path) || f.Path == "." {
			return fmt.Errorf("context entry %q: not a relative path", f.Path)
		}
		p := filepath.Join(root, filepath.FromSlash(f.Path))
		var err error
		switch {
		case f.Mode.IsDir():
			err = os.Mkdir(p, 0o700)
		case f.Mode&fs.ModeSymlink != 0:
			err = os.Symlink(f.Target, p)
		case f.Mode.IsRegular():
			if err = os.WriteFile(p, f.Content, 0o600); err == nil {
				err = os.Chmod(p, f.Mode.Perm())
			}
		default:
			err = fmt.Errorf("unsupported file type %v", f.Mode.Type())
		}
		if err != nil {
			return fmt.Errorf("creating context entry %s: %w", f.Path, err)
		}
	}
	epoch := []unix.Timespec{{}, {}}
	for i := len(all) - 1; i >= 0; i-- {
		f := all[i]
		p := filepath.Join(root, filepath.FromSlash(f.Path))
		if f.Mode.IsDir() {
			if err := os.Chmod(p, f.Mode.Perm()); err != nil {
				return fmt.Errorf("setting mode of context entry %s: %w", f.Path, err)
			}
		}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, epoch, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("setting timestamps of context entry %s: %w", f.Path, err)
		}
	}
	if err := os.Chmod(root, 0o755); err != nil {
		return err
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, root, epoch, unix.AT_SYMLINK_NOFOLLOW)
}
