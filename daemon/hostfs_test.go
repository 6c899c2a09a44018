package daemon

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostFile is a file to create in a test root before the operation.
type hostFile struct {
	path    string
	content string
	mode    fs.FileMode
	link    string // a symlink to this target instead of a file
	dir     bool
}

func setUpRoot(t *testing.T, files []hostFile) Root {
	t.Helper()
	r := Root(t.TempDir())
	for _, f := range files {
		p := r.HostPath(f.path)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		switch {
		case f.dir:
			require.NoError(t, os.MkdirAll(p, 0o755))
		case f.link != "":
			require.NoError(t, os.Symlink(f.link, p))
		default:
			mode := f.mode
			if mode == 0 {
				mode = 0o644
			}
			require.NoError(t, os.WriteFile(p, []byte(f.content), mode))
			require.NoError(t, os.Chmod(p, mode))
		}
	}
	return r
}

func readHost(t *testing.T, r Root, p string) (string, fs.FileMode, bool) {
	t.Helper()
	data, err := os.ReadFile(r.HostPath(p))
	if errors.Is(err, fs.ErrNotExist) {
		return "", 0, false
	}
	require.NoError(t, err)
	fi, err := os.Stat(r.HostPath(p))
	require.NoError(t, err)
	return string(data), fi.Mode().Perm(), true
}

func TestResolve(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		files   []hostFile
		in      string
		want    string
		wantErr error
	}{
		{name: "plain", in: "/etc/foo", want: "/etc/foo"},
		{name: "cleaned", in: "/etc//a/../foo/", want: "/etc/foo"},
		{name: "root", in: "/", want: "/"},
		{name: "absolute link in a directory stays in the root", files: []hostFile{{path: "/home", link: "/var/home"}}, in: "/home/core/x", want: "/var/home/core/x"},
		{name: "relative link", files: []hostFile{{path: "/etc/a", link: "b/c"}}, in: "/etc/a/x", want: "/etc/b/c/x"},
		{name: "dot-dot stops at the root", files: []hostFile{{path: "/etc/up", link: "../../../../../etc/in"}}, in: "/etc/up/x", want: "/etc/in/x"},
		{name: "chained links", files: []hostFile{{path: "/etc/a", link: "/etc/b"}, {path: "/etc/b", link: "/var/c"}}, in: "/etc/a/x", want: "/var/c/x"},
		{name: "last element is not followed", files: []hostFile{{path: "/etc/a", link: "/usr/lib/a"}}, in: "/etc/a", want: "/etc/a"},
		{name: "loop", files: []hostFile{{path: "/etc/a", link: "/etc/b"}, {path: "/etc/b", link: "/etc/a"}}, in: "/etc/a/x", wantErr: syscall.ELOOP},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := setUpRoot(t, tc.files)
			got, err := r.Resolve(tc.in)
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	_, err := Root(t.TempDir()).Resolve("etc/foo")
	assert.Error(t, err, "relative path")
}

func TestWriteFile(t *testing.T) {
	t.Parallel()
	outside := t.TempDir()
	tests := []struct {
		name      string
		files     []hostFile
		path      string
		mode      fs.FileMode
		wantErr   error
		wantMsg   string
		wantAt    string // host path where the content lands; default path
		wantOrig  *hostFile
		wantStamp bool
	}{
		{name: "new file in new directories", path: "/etc/a/b/c.conf", mode: 0o600, wantStamp: true},
		{
			name: "existing OS file is backed up", files: []hostFile{{path: "/etc/os.conf", content: "shipped", mode: 0o640}},
			path: "/etc/os.conf", mode: 0o644, wantOrig: &hostFile{content: "shipped", mode: 0o640},
		},
		{
			name: "an existing backup is kept", files: []hostFile{
				{path: "/etc/os.conf", content: "from config 1"}, {path: OrigDir + "/etc/os.conf" + OrigSuffix, content: "shipped", mode: 0o600},
			},
			path: "/etc/os.conf", mode: 0o644, wantOrig: &hostFile{content: "shipped", mode: 0o600},
		},
		{
			name: "an existing stamp is kept, no backup made", files: []hostFile{
				{path: "/etc/mine.conf", content: "from config 1"}, {path: NoOrigDir + "/etc/mine.conf" + NoOrigSuffix},
			},
			path: "/etc/mine.conf", mode: 0o644, wantStamp: true,
		},
		{name: "daemon state is not backed up", path: StateDir + "/currentconfig", mode: 0o644},
		{name: "unmanaged path", path: "/usr/bin/x", mode: 0o644, wantErr: ErrUnmanagedPath},
		{name: "unclean path escaping after cleaning", path: "/etc/../usr/x", mode: 0o644, wantErr: ErrUnmanagedPath},
		{name: "relative path", path: "etc/x", mode: 0o644, wantErr: ErrUnmanagedPath},
		{name: "managed root itself", path: "/etc", mode: 0o644, wantErr: ErrUnmanagedPath},
		{
			name:  "absolute symlink to a host directory outside the root is refused, not followed",
			files: []hostFile{{path: "/etc/escape", link: outside}}, path: "/etc/escape/x", mode: 0o644, wantErr: ErrUnmanagedPath,
		},
		{
			name: "relative symlink climbing out of the root is refused", files: []hostFile{{path: "/etc/escape", link: strings.Repeat("../", 20) + outside}},
			path: "/etc/escape/x", mode: 0o644, wantErr: ErrUnmanagedPath,
		},
		{
			name: "symlink into read-only /usr is refused", files: []hostFile{{path: "/etc/lib", link: "/usr/lib"}},
			path: "/etc/lib/x", mode: 0o644, wantErr: ErrUnmanagedPath,
		},
		{
			name: "absolute symlink is followed inside the root", files: []hostFile{{path: "/home", link: "/var/home"}},
			path: "/home/core/.ssh/authorized_keys.d/ignition", mode: 0o600, wantAt: "/var/home/core/.ssh/authorized_keys.d/ignition", wantStamp: true,
		},
		{
			name: "a symlink at the path is replaced and kept as the original", files: []hostFile{{path: "/etc/l.conf", link: "/usr/share/l.conf"}},
			path: "/etc/l.conf", mode: 0o644, wantOrig: &hostFile{link: "/usr/share/l.conf"},
		},
		{name: "directory at the path", files: []hostFile{{path: "/etc/d", dir: true}, {path: "/etc/d/x", content: "x"}}, path: "/etc/d", mode: 0o644, wantMsg: "writing /etc/d"},
		{name: "special mode bits", path: "/etc/suid", mode: 0o4755, wantMsg: "only permission bits"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := setUpRoot(t, tc.files)
			err := r.WriteFile(tc.path, []byte("new content"), tc.mode, os.Getuid(), os.Getgid())
			if tc.wantErr != nil || tc.wantMsg != "" {
				require.Error(t, err)
				if tc.wantErr != nil {
					assert.ErrorIs(t, err, tc.wantErr)
				}
				assert.Contains(t, err.Error(), tc.wantMsg)
				entries, err := os.ReadDir(outside)
				require.NoError(t, err)
				assert.Empty(t, entries, "nothing written outside the root")
				return
			}
			require.NoError(t, err)
			at := tc.wantAt
			if at == "" {
				at = tc.path
			}
			content, mode, ok := readHost(t, r, at)
			require.True(t, ok, "file written at %s", at)
			assert.Equal(t, "new content", content)
			assert.Equal(t, tc.mode, mode)
			fi, err := os.Lstat(r.HostPath(at))
			require.NoError(t, err)
			assert.True(t, fi.Mode().IsRegular())

			orig := OrigDir + at + OrigSuffix
			if tc.wantOrig == nil {
				_, err := os.Lstat(r.HostPath(orig))
				assert.ErrorIs(t, err, fs.ErrNotExist, "no backup")
			} else if tc.wantOrig.link != "" {
				target, err := os.Readlink(r.HostPath(orig))
				require.NoError(t, err)
				assert.Equal(t, tc.wantOrig.link, target)
			} else {
				content, mode, ok := readHost(t, r, orig)
				require.True(t, ok, "backup at %s", orig)
				assert.Equal(t, tc.wantOrig.content, content)
				assert.Equal(t, tc.wantOrig.mode, mode)
			}
			_, err = os.Lstat(r.HostPath(NoOrigDir + at + NoOrigSuffix))
			assert.Equal(t, tc.wantStamp, err == nil, "noorig stamp")
			assertNoTempFiles(t, r, at)
		})
	}
}

func assertNoTempFiles(t *testing.T, r Root, p string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Dir(r.HostPath(p)))
	require.NoError(t, err)
	for _, e := range entries {
		assert.False(t, strings.HasPrefix(e.Name(), "."), "temporary file %s left behind", e.Name())
	}
}

func TestWriteFileOwner(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Skip("changing owners needs root")
	}
	r := setUpRoot(t, nil)
	require.NoError(t, r.WriteFile("/var/home/core/x", []byte("x"), 0o600, 1000, 1001))
	fi, err := os.Stat(r.HostPath("/var/home/core/x"))
	require.NoError(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	assert.Equal(t, []uint32{1000, 1001}, []uint32{st.Uid, st.Gid})
	assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())
}

// failingReader yields some bytes and then fails, like a decoder hitting corrupt input.
type failingReader struct{ sent bool }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.sent {
		return 0, io.ErrUnexpectedEOF
	}
	f.sent = true
	return copy(p, "partial new con"), nil
}

func TestWriteFromFailureKeepsPreviousFile(t *testing.T) {
	t.Parallel()
	r := setUpRoot(t, []hostFile{{path: "/etc/keep.conf", content: "previous", mode: 0o640}})
	err := r.WriteFrom("/etc/keep.conf", &failingReader{}, 0o600, os.Getuid(), os.Getgid())
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	assert.Contains(t, err.Error(), "writing /etc/keep.conf: writing content")
	content, mode, ok := readHost(t, r, "/etc/keep.conf")
	require.True(t, ok)
	assert.Equal(t, "previous", content)
	assert.Equal(t, fs.FileMode(0o640), mode)
	assertNoTempFiles(t, r, "/etc/keep.conf")
}

func TestRemoveFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		files       []hostFile
		path        string
		wantContent *hostFile // nil: the file is gone
		wantErr     error
	}{
		{
			name: "original restored", files: []hostFile{
				{path: "/etc/os.conf", content: "from config"}, {path: OrigDir + "/etc/os.conf" + OrigSuffix, content: "shipped", mode: 0o640},
			},
			path: "/etc/os.conf", wantContent: &hostFile{content: "shipped", mode: 0o640},
		},
		{
			name: "original symlink restored", files: []hostFile{
				{path: "/etc/l.conf", content: "from config"}, {path: OrigDir + "/etc/l.conf" + OrigSuffix, link: "/usr/share/l.conf"},
			},
			path: "/etc/l.conf", wantContent: &hostFile{link: "/usr/share/l.conf"},
		},
		{
			name: "file a config created is deleted with its stamp", files: []hostFile{
				{path: "/etc/mine.conf", content: "from config"}, {path: NoOrigDir + "/etc/mine.conf" + NoOrigSuffix},
			},
			path: "/etc/mine.conf",
		},
		{name: "file without record is deleted", files: []hostFile{{path: "/etc/old.conf", content: "x"}}, path: "/etc/old.conf"},
		{name: "already gone", path: "/etc/none.conf"},
		{name: "unmanaged", path: "/usr/lib/x", wantErr: ErrUnmanagedPath},
		{name: "through an escaping link", files: []hostFile{{path: "/etc/usr", link: "/usr"}}, path: "/etc/usr/lib/x", wantErr: ErrUnmanagedPath},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := setUpRoot(t, tc.files)
			err := r.RemoveFile(tc.path)
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			switch {
			case tc.wantContent == nil:
				_, err := os.Lstat(r.HostPath(tc.path))
				assert.ErrorIs(t, err, fs.ErrNotExist)
			case tc.wantContent.link != "":
				target, err := os.Readlink(r.HostPath(tc.path))
				require.NoError(t, err)
				assert.Equal(t, tc.wantContent.link, target)
			default:
				content, mode, ok := readHost(t, r, tc.path)
				require.True(t, ok)
				assert.Equal(t, tc.wantContent.content, content)
				assert.Equal(t, tc.wantContent.mode, mode)
			}
			for _, p := range []string{OrigDir + tc.path + OrigSuffix, NoOrigDir + tc.path + NoOrigSuffix} {
				_, err := os.Lstat(r.HostPath(p))
				assert.ErrorIs(t, err, fs.ErrNotExist, "%s removed", p)
			}
		})
	}
}

// TestWriteRemoveRoundTrip writes a config file twice over an OS file and removes it: the OS file comes back.
func TestWriteRemoveRoundTrip(t *testing.T) {
	t.Parallel()
	r := setUpRoot(t, []hostFile{{path: "/etc/chrony.conf", content: "pool 2.rhel.pool.ntp.org", mode: 0o644}})
	require.NoError(t, r.WriteFile("/etc/chrony.conf", []byte("server a"), 0o600, os.Getuid(), os.Getgid()))
	require.NoError(t, r.WriteFile("/etc/chrony.conf", []byte("server b"), 0o600, os.Getuid(), os.Getgid()))
	require.NoError(t, r.WriteFile("/etc/new.conf", []byte("new"), 0o644, os.Getuid(), os.Getgid()))
	require.NoError(t, r.RemoveFile("/etc/chrony.conf"))
	require.NoError(t, r.RemoveFile("/etc/new.conf"))
	content, mode, ok := readHost(t, r, "/etc/chrony.conf")
	require.True(t, ok)
	assert.Equal(t, "pool 2.rhel.pool.ntp.org", content)
	assert.Equal(t, fs.FileMode(0o644), mode)
	_, _, ok = readHost(t, r, "/etc/new.conf")
	assert.False(t, ok)
}

func TestWriteSymlinkAndDelete(t *testing.T) {
	t.Parallel()
	r := setUpRoot(t, []hostFile{
		{path: "/etc/systemd/system/os.service", content: "shipped", mode: 0o640},
		{path: "/etc/systemd/system/os.service.d/10-os.conf", content: "shipped drop-in"},
		{path: "/etc/usr", link: "/usr"},
	})
	// Masking an OS unit keeps it; removing the mask puts it back.
	require.NoError(t, r.WriteSymlink("/etc/systemd/system/os.service", "/dev/null"))
	target, err := os.Readlink(r.HostPath("/etc/systemd/system/os.service"))
	require.NoError(t, err)
	assert.Equal(t, "/dev/null", target)
	ok, err := r.HasBackup("/etc/systemd/system/os.service")
	require.NoError(t, err)
	assert.True(t, ok)
	require.NoError(t, r.RemoveFile("/etc/systemd/system/os.service"))
	content, mode, exists := readHost(t, r, "/etc/systemd/system/os.service")
	require.True(t, exists)
	assert.Equal(t, "shipped", content)
	assert.Equal(t, fs.FileMode(0o640), mode)

	// Deleting an OS drop-in keeps it too.
	p := "/etc/systemd/system/os.service.d/10-os.conf"
	require.NoError(t, r.Delete(p))
	_, _, exists = readHost(t, r, p)
	assert.False(t, exists)
	require.NoError(t, r.Delete(p), "deleting again")
	require.NoError(t, r.Delete("/etc/none.conf"), "deleting what is not there")
	ok, err = r.HasBackup("/etc/none.conf")
	require.NoError(t, err)
	assert.False(t, ok, "nothing recorded for a path never there")
	require.NoError(t, r.RemoveFile(p))
	content, _, exists = readHost(t, r, p)
	require.True(t, exists)
	assert.Equal(t, "shipped drop-in", content)

	assert.ErrorIs(t, r.WriteSymlink("/etc/usr/lib/x.service", "/dev/null"), ErrUnmanagedPath)
	assert.ErrorIs(t, r.Delete("/usr/lib/x"), ErrUnmanagedPath)
}

func TestRemoveFileUnderAFile(t *testing.T) {
	t.Parallel()
	r := setUpRoot(t, []hostFile{{path: "/etc/blocker", content: "a file"}})
	require.Error(t, r.WriteFile("/etc/blocker/x.conf", []byte("x"), 0o644, 0, 0))
	require.NoError(t, r.RemoveFile("/etc/blocker/x.conf"), "a path under a file is not there")
	ok, err := r.HasBackup("/etc/blocker/x.conf")
	require.NoError(t, err)
	assert.False(t, ok, "the stamp the failed write left is removed")
}

func TestReadFileAndLstat(t *testing.T) {
	t.Parallel()
	r := setUpRoot(t, []hostFile{
		{path: "/var/home/core/f", content: "data"}, {path: "/home", link: "/var/home"}, {path: "/etc/l", link: "/var/home/core/f"},
	})
	data, err := r.ReadFile("/home/core/f")
	require.NoError(t, err)
	assert.Equal(t, "data", string(data))
	_, err = r.ReadFile("/etc/l")
	assert.ErrorContains(t, err, "not a regular file")
	fi, err := r.Lstat("/etc/l")
	require.NoError(t, err)
	assert.NotZero(t, fi.Mode()&fs.ModeSymlink)
	target, err := r.Readlink("/etc/l")
	require.NoError(t, err)
	assert.Equal(t, "/var/home/core/f", target)
}

func TestWritePrivate(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Skip("changing owners needs root")
	}
	r := setUpRoot(t, []hostFile{{path: "/home", link: "/var/home"}, {path: "/var/home/core", dir: true}})
	require.NoError(t, r.writePrivate("/home/core/.ssh/k/f", []byte("k"), 0o600, 1000, 1001, 0o700, "/home/core/.ssh", "/home/core/.ssh/k"))
	for _, p := range []string{"/var/home/core/.ssh", "/var/home/core/.ssh/k", "/var/home/core/.ssh/k/f"} {
		fi, err := os.Lstat(r.HostPath(p))
		require.NoError(t, err)
		st := fi.Sys().(*syscall.Stat_t)
		assert.Equal(t, []uint32{1000, 1001}, []uint32{st.Uid, st.Gid}, p)
	}
	_, err := os.Lstat(r.HostPath(StateDir))
	assert.ErrorIs(t, err, fs.ErrNotExist, "no backups")
	require.NoError(t, r.removePrivate("/home/core/.ssh/k/f"))
	require.NoError(t, r.removePrivate("/home/core/.ssh/k/f"))
	_, _, ok := readHost(t, r, "/var/home/core/.ssh/k/f")
	assert.False(t, ok)
}
