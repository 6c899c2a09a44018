package layering

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tree describes a directory on disk: each entry's path, mode, modification time and content or target.
func tree(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fmt.Fprintf(&b, "%s %s %d", rel, info.Mode(), info.ModTime().Unix())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " -> %s", target)
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %q", data)
		}
		b.WriteString("\n")
		return nil
	})
	require.NoError(t, err)
	return b.String()
}

func TestWriteDir(t *testing.T) {
	t.Parallel()
	bc := &BuildContext{
		Containerfile: []byte("FROM scratch\n"),
		Files: []ContextFile{
			{Path: "files", Mode: fs.ModeDir | 0o755},
			{Path: "files/00", Mode: fs.ModeDir | 0o755},
			{Path: "files/00/locked", Mode: fs.ModeDir | 0o500},
			{Path: "files/00/locked/secret", Mode: 0o600, Content: []byte("s3cret\n")},
			{Path: "files/00/null", Mode: fs.ModeSymlink | 0o777, Target: "/dev/null"},
			{Path: "files/00/tool", Mode: 0o755, Content: []byte("#!/bin/sh\n")},
		},
	}
	dir := filepath.Join(t.TempDir(), "ctx")
	require.NoError(t, bc.WriteDir(dir))
	assert.Equal(t, `. drwxr-xr-x 0
Containerfile -rw-r--r-- 0 "FROM scratch\n"
files drwxr-xr-x 0
files/00 drwxr-xr-x 0
files/00/locked dr-x------ 0
files/00/locked/secret -rw------- 0 "s3cret\n"
files/00/null Lrwxrwxrwx 0 -> /dev/null
files/00/tool -rwxr-xr-x 0 "#!/bin/sh\n"
`, tree(t, dir), "modes are exact (whatever the umask) and every timestamp is the epoch")

	t.Run("an empty directory is replaced", func(t *testing.T) {
		empty := t.TempDir()
		require.NoError(t, bc.WriteDir(empty))
		assert.FileExists(t, filepath.Join(empty, ContainerfileName))
	})
	t.Run("a non-empty directory is refused", func(t *testing.T) {
		err := bc.WriteDir(dir)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "the directory is not empty")
	})
	t.Run("an error leaves nothing behind", func(t *testing.T) {
		parent := t.TempDir()
		bad := &BuildContext{Containerfile: []byte("FROM scratch\n"), Files: []ContextFile{
			{Path: "files", Mode: fs.ModeDir | 0o755},
			{Path: "files/orphan/x", Mode: 0o644},
		}}
		err := bad.WriteDir(filepath.Join(parent, "ctx"))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "creating context entry files/orphan/x")
		left, rerr := os.ReadDir(parent)
		require.NoError(t, rerr)
		assert.Empty(t, left, "no partial context and no temporary directory")
	})
	t.Run("paths must stay inside", func(t *testing.T) {
		bad := &BuildContext{Files: []ContextFile{{Path: "../escape", Mode: 0o644}}}
		err := bad.WriteDir(filepath.Join(t.TempDir(), "ctx"))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "not a relative path")
	})
}

func TestLayout(t *testing.T) {
	t.Parallel()
	dir := func(p string, mode fs.FileMode, uid int) *entry {
		return &entry{path: p, mode: fs.ModeDir | mode, uid: uid, gid: uid, field: p}
	}
	reg := func(p string, uid int) *entry {
		return &entry{path: p, mode: 0o644, uid: uid, gid: uid, data: []byte(p), field: p}
	}
	entries := []*entry{
		reg("/etc/motd", 0),
		dir("/etc/app", 0o750, 0),
		reg("/etc/app/a.conf", 0),
		reg("/etc/app/sub/b.conf", 0), // sub is not declared: its own COPY, so that sub is not chmodded
		dir("/etc/app/users", 0o700, 1001),
		reg("/etc/app/users/u.conf", 1001),
		reg("/etc/app/users/root-owned", 0), // inside a non-root directory
		{path: "/etc/app/group-root", mode: 0o644, uid: 1002, gid: 0, data: []byte("x")}, // same group as /etc/app, not same owner
		{path: "/etc/app/user-root", mode: 0o644, uid: 0, gid: 1003, data: []byte("y")},  // same owner as /etc/app, not same group
		dir("/var/home/core/.ssh", 0o700, 1000),
		reg("/var/home/core/.ssh/config", 1000),
	}
	steps, files, err := layout(entries)
	require.NoError(t, err)
	var lines []string
	for _, s := range steps {
		lines = append(lines, fmt.Sprintf("%d:%d %s %s", s.uid, s.gid, s.src, s.dest))
	}
	want := []string{
		"0:0 files/00 /etc/",
		"0:1003 files/01 /etc/app/",
		"1001:1001 files/02 /etc/app/",
		"1002:0 files/03 /etc/app/",
		"0:0 files/04 /etc/app/sub/",
		"0:0 files/05 /etc/app/users/",
		"0:0 files/empty /var/home/core/",
		"1000:1000 files/06 /var/home/core/",
	}
	assert.Equal(t, want, lines)
	assert.Equal(t, `drwxr-xr-x 0:0 files
drwxr-xr-x 0:0 files/00
drwxr-x--- 0:0 files/00/app
-rw-r--r-- 0:0 files/00/app/a.conf 15
-rw-r--r-- 0:0 files/00/motd 9
drwxr-xr-x 0:0 files/01
-rw-r--r-- 0:1003 files/01/user-root 1
drwxr-xr-x 0:0 files/02
drwx------ 1001:1001 files/02/users
-rw-r--r-- 1001:1001 files/02/users/u.conf 21
drwxr-xr-x 0:0 files/03
-rw-r--r-- 1002:0 files/03/group-root 1
drwxr-xr-x 0:0 files/04
-rw-r--r-- 0:0 files/04/b.conf 19
drwxr-xr-x 0:0 files/05
-rw-r--r-- 0:0 files/05/root-owned 25
drwxr-xr-x 0:0 files/06
drwx------ 1000:1000 files/06/.ssh
-rw-r--r-- 1000:1000 files/06/.ssh/config 26
drwxr-xr-x 0:0 files/empty
`, listing(files))
}
