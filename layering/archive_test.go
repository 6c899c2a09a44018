package layering

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// archiveTestContext is a context with every entry kind: directories, regular files (one setuid-free
// executable, one owned by another user) and a symlink.
func archiveTestContext(t testing.TB) *BuildContext {
	rendered := renderedMC(t, testOSImage, docsIgnition(t))
	bc, err := Compose(Inputs{Rendered: rendered, MachineOSConfig: docsMachineOSConfig(t), Arch: "amd64"})
	require.NoError(t, err)
	bc.Files = append(bc.Files,
		ContextFile{Path: "zz-link", Mode: fs.ModeSymlink | 0o777, Target: "../etc/hostname"},
		ContextFile{Path: "zz-owned", Mode: 0o640, UID: 1000, GID: 1000, Content: []byte("x")},
		ContextFile{Path: "zz-sticky", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
	)
	return bc
}

func TestArchiveRoundTrip(t *testing.T) {
	t.Parallel()
	bc := archiveTestContext(t)
	data, err := bc.Archive()
	require.NoError(t, err)
	again, err := bc.Archive()
	require.NoError(t, err)
	assert.Equal(t, data, again, "the same context gives the same bytes")

	files, err := ReadArchive(data)
	require.NoError(t, err)
	want := make([]ContextFile, len(bc.Files))
	copy(want, bc.Files)
	for i := range want {
		if len(want[i].Content) == 0 {
			want[i].Content = nil
		}
	}
	for i := range files {
		if len(files[i].Content) == 0 {
			files[i].Content = nil
		}
	}
	assert.Equal(t, want, files)

	// What the pod writes from the archive is what the service would have written from the composed context.
	direct, fromArchive := t.TempDir()+"/a", t.TempDir()+"/b"
	require.NoError(t, bc.WriteDir(direct))
	require.NoError(t, (&BuildContext{Containerfile: bc.Containerfile, Files: files}).WriteDir(fromArchive))
	assert.Equal(t, dirListing(t, direct), dirListing(t, fromArchive))
}

func TestReadArchiveRefuses(t *testing.T) {
	t.Parallel()
	build := func(hs ...*tar.Header) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		for _, h := range hs {
			require.NoError(t, tw.WriteHeader(h))
			if h.Size > 0 {
				_, err := tw.Write(bytes.Repeat([]byte("a"), int(h.Size)))
				require.NoError(t, err)
			}
		}
		require.NoError(t, tw.Close())
		require.NoError(t, zw.Close())
		return buf.Bytes()
	}
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{name: "not gzip", data: []byte("plain"), wantErr: "reading build context archive"},
		{name: "absolute path", data: build(&tar.Header{Name: "/etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644}), wantErr: `"/etc/passwd": not a relative path`},
		{name: "climbs out", data: build(&tar.Header{Name: "files/../../x", Typeflag: tar.TypeReg, Mode: 0o644}), wantErr: "not a relative path"},
		{name: "duplicate", data: build(&tar.Header{Name: "a", Typeflag: tar.TypeReg}, &tar.Header{Name: "a", Typeflag: tar.TypeReg}), wantErr: `"a" appears twice`},
		{name: "hard link", data: build(&tar.Header{Name: "a", Typeflag: tar.TypeLink, Linkname: "b"}), wantErr: "unsupported type"},
		{name: "device", data: build(&tar.Header{Name: "a", Typeflag: tar.TypeChar}), wantErr: "unsupported type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadArchive(tc.data)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

func FuzzReadArchive(f *testing.F) {
	bc := archiveTestContext(f)
	data, err := bc.Archive()
	require.NoError(f, err)
	f.Add(data)
	small, err := (&BuildContext{Files: []ContextFile{{Path: "a", Mode: 0o644, Content: []byte("b")}}}).Archive()
	require.NoError(f, err)
	f.Add(small)
	f.Fuzz(func(t *testing.T, data []byte) {
		files, err := ReadArchive(data)
		if err != nil {
			return
		}
		// Whatever is accepted is safe to write and archives back to what it read.
		for _, file := range files {
			if !fs.ValidPath(file.Path) || file.Path == "." {
				t.Fatalf("accepted path %q", file.Path)
			}
		}
		out, err := (&BuildContext{Files: files}).Archive()
		if err != nil {
			return // e.g. a name tar cannot re-encode; reading it was still safe
		}
		back, err := ReadArchive(out)
		require.NoError(t, err)
		require.Len(t, back, len(files))
	})
}

// dirListing lists a directory tree: each entry's path, mode, modification time, symlink target and
// content.
func dirListing(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		line := fmt.Sprintf("%s %v %d", rel, info.Mode(), info.ModTime().Unix())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			line += " -> " + target
		case info.Mode().IsRegular():
			content, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += " " + string(content)
		}
		out = append(out, line)
		return nil
	}))
	return out
}
