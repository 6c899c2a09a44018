package testimages

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAppletPath(t *testing.T) {
	tests := []struct{ name, line, want string }{
		{name: "bin goes to usr/bin", line: "bin/sh", want: "usr/bin/sh"},
		{name: "sbin goes to usr/sbin", line: "sbin/ip", want: "usr/sbin/ip"},
		{name: "usr/bin stays", line: "usr/bin/awk", want: "usr/bin/awk"},
		{name: "usr/sbin stays", line: "usr/sbin/chroot", want: "usr/sbin/chroot"},
		{name: "bare name goes to usr/bin", line: "linuxrc", want: "usr/bin/linuxrc"},
		{name: "blank line", line: "  ", want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, appletPath(tc.line))
		})
	}
}

func TestFileMode(t *testing.T) {
	tests := []struct {
		name string
		path string
		want int64
	}{
		{name: "stand-in program", path: "usr/bin/ostree", want: 0o755},
		{name: "package program in sbin", path: "usr/share/testrepo/rng-tools/usr/sbin/rngd", want: 0o755},
		{name: "unit file", path: "usr/share/testrepo/rng-tools/usr/lib/systemd/system/rngd.service", want: 0o644},
		{name: "etc file", path: "etc/passwd", want: 0o644},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, fileMode(tc.path))
		})
	}
}

// TestLayoutIsReproducible builds the base twice into separate caches: the same inputs give the same
// manifest digest, another version gives another, and a cached layout is reused.
func TestLayoutIsReproducible(t *testing.T) {
	a, err := BuildLayout(Options{CacheDir: t.TempDir()})
	require.NoError(t, err)
	b, err := BuildLayout(Options{CacheDir: t.TempDir()})
	require.NoError(t, err)
	assert.Equal(t, a.ManifestDigest, b.ManifestDigest, "same inputs must give the same image")

	other, err := BuildLayout(Options{CacheDir: t.TempDir(), Version: "9.6.20261115-0"})
	require.NoError(t, err)
	assert.NotEqual(t, a.ManifestDigest, other.ManifestDigest, "another version must give another image")

	again, err := BuildLayout(Options{CacheDir: filepath.Dir(a.Dir)})
	require.NoError(t, err)
	assert.Equal(t, a.Dir, again.Dir, "a cached layout is reused")
}

// TestRootfsContent reads the layer back and checks what layered Containerfiles rely on.
func TestRootfsContent(t *testing.T) {
	l, err := BuildLayout(Options{CacheDir: t.TempDir()})
	require.NoError(t, err)
	files := layerEntries(t, l)

	for _, p := range []string{"usr/bin/ostree", "usr/bin/dnf", "usr/bin/rpm-ostree", "usr/bin/systemctl", "usr/bin/busybox"} {
		h, ok := files[p]
		if assert.True(t, ok, "%s missing", p) {
			assert.Equal(t, byte(tar.TypeReg), h.Typeflag, p)
			assert.Equal(t, int64(0o755), h.Mode, "%s must be executable", p)
		}
	}
	sh, ok := files["usr/bin/sh"]
	require.True(t, ok, "/bin/sh (via usr/bin/sh) missing")
	assert.Equal(t, "/usr/bin/busybox", sh.Linkname)
	assert.Equal(t, "usr/bin", files["bin"].Linkname, "merged /usr: /bin is a link")
	assert.Contains(t, files, "usr/share/testrepo/cowsay/usr/bin/cowsay", "the docs' cowsay package must be installable")
	assert.Equal(t, int64(0o1777), files["tmp"].Mode)
	for _, p := range []string{"usr/lib/modules/" + KernelVersion + "/vmlinuz", "usr/lib/modules/" + KernelVersion + "/initramfs.img", "usr/lib/os-release"} {
		h, ok := files[p]
		if assert.True(t, ok, "%s missing: an OSTree deployment needs it", p) {
			assert.Equal(t, byte(tar.TypeReg), h.Typeflag, p)
		}
	}
	for name, h := range files {
		assert.Equal(t, 0, h.Uid, "%s owned by root", name)
		assert.True(t, h.ModTime.Equal(epoch), "%s has the fixed timestamp", name)
	}
}

func layerEntries(t *testing.T, l *Layout) map[string]*tar.Header {
	t.Helper()
	var layerDigest digest.Digest
	entries, err := os.ReadDir(filepath.Join(l.Dir, "blobs", "sha256"))
	require.NoError(t, err)
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(l.Dir, "blobs", "sha256", e.Name()))
		require.NoError(t, err)
		if len(raw) > 2 && raw[0] == 0x1f && raw[1] == 0x8b {
			layerDigest = digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		}
	}
	require.NotEmpty(t, layerDigest, "no gzip layer in the layout")
	raw, err := os.ReadFile(filepath.Join(l.Dir, "blobs", "sha256", layerDigest.Encoded()))
	require.NoError(t, err)
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	require.NoError(t, err)
	tr := tar.NewReader(zr)
	out := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		out[filepath.Clean(h.Name)] = h
	}
	return out
}

// TestPayloadIsReproducible: a payload base is reproducible across caches, its size changes the image,
// the default image is untouched by it, and the payload is a second layer of incompressible files.
func TestPayloadIsReproducible(t *testing.T) {
	plain, err := BuildLayout(Options{CacheDir: t.TempDir()})
	require.NoError(t, err)
	a, err := BuildLayout(Options{CacheDir: t.TempDir(), PayloadMB: 2})
	require.NoError(t, err)
	b, err := BuildLayout(Options{CacheDir: t.TempDir(), PayloadMB: 2})
	require.NoError(t, err)
	assert.Equal(t, a.ManifestDigest, b.ManifestDigest, "the same payload size must give the same image")
	assert.NotEqual(t, plain.ManifestDigest, a.ManifestDigest, "a payload must change the image")
	other, err := BuildLayout(Options{CacheDir: t.TempDir(), PayloadMB: 3})
	require.NoError(t, err)
	assert.NotEqual(t, a.ManifestDigest, other.ManifestDigest, "another payload size must give another image")
	_, err = BuildLayout(Options{CacheDir: t.TempDir(), PayloadMB: -1})
	assert.Error(t, err)

	raw, err := os.ReadFile(filepath.Join(a.Dir, "blobs", "sha256", a.ManifestDigest.Encoded()))
	require.NoError(t, err)
	var man imgspecv1.Manifest
	require.NoError(t, json.Unmarshal(raw, &man))
	require.Len(t, man.Layers, 2)
	plainRaw, err := os.ReadFile(filepath.Join(plain.Dir, "blobs", "sha256", plain.ManifestDigest.Encoded()))
	require.NoError(t, err)
	var plainMan imgspecv1.Manifest
	require.NoError(t, json.Unmarshal(plainRaw, &plainMan))
	assert.Equal(t, plainMan.Layers[0], man.Layers[0], "the base layer is the default one")
	assert.Greater(t, man.Layers[1].Size, int64(2<<20), "the payload must not compress")

	blob, err := os.ReadFile(filepath.Join(a.Dir, "blobs", "sha256", man.Layers[1].Digest.Encoded()))
	require.NoError(t, err)
	assert.Equal(t, man.Layers[1].Digest, digest.FromBytes(blob))
	zr, err := gzip.NewReader(bytes.NewReader(blob))
	require.NoError(t, err)
	tr := tar.NewReader(zr)
	var files int
	var total int64
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		if h.Typeflag == tar.TypeReg {
			assert.Equal(t, PayloadDir, filepath.Dir(h.Name))
			files++
			total += h.Size
		}
	}
	assert.Equal(t, 32, files)
	assert.Equal(t, int64(2<<20), total)
}

// TestServiceImage builds the service image from this module and checks what is in it: the programs,
// linked statically (the image has no C library), busybox, the users, and the name containerd imports
// it under. A second build with nothing changed reuses the archive.
func TestServiceImage(t *testing.T) {
	if testing.Short() {
		t.Skip("links the project's programs")
	}
	ctx := context.Background()
	cache := t.TempDir()
	img, err := BuildServiceImage(ctx, ServiceOptions{CacheDir: cache})
	require.NoError(t, err)
	assert.Equal(t, ServiceImageName, img.Name)

	files := map[string][]byte{}
	f, err := os.Open(img.Archive)
	require.NoError(t, err)
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		data, err := io.ReadAll(tr)
		require.NoError(t, err)
		files[hdr.Name] = data
	}
	var index imgspecv1.Index
	require.NoError(t, json.Unmarshal(files["index.json"], &index))
	require.Len(t, index.Manifests, 1)
	assert.Equal(t, img.ManifestDigest, index.Manifests[0].Digest)
	assert.Equal(t, ServiceImageName, index.Manifests[0].Annotations["io.containerd.image.name"])
	var man imgspecv1.Manifest
	require.NoError(t, json.Unmarshal(files["blobs/sha256/"+img.ManifestDigest.Encoded()], &man))
	require.Len(t, man.Layers, 1)
	layer := files["blobs/sha256/"+man.Layers[0].Digest.Encoded()]
	require.Equal(t, man.Layers[0].Digest, digest.FromBytes(layer), "layer blob matches its digest")

	rootfs := map[string]*tar.Header{}
	contents := map[string][]byte{}
	lr := tar.NewReader(bytes.NewReader(layer))
	for {
		hdr, err := lr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		rootfs[hdr.Name] = hdr
		if hdr.Typeflag == tar.TypeReg && strings.HasPrefix(hdr.Name, "usr/bin/imagemode") {
			contents[hdr.Name], _ = io.ReadAll(lr)
		}
	}
	for _, c := range ServiceCommands {
		data := contents["usr/bin/"+c]
		require.NotEmpty(t, data, "%s in the image", c)
		assert.Equal(t, int64(0o755), rootfs["usr/bin/"+c].Mode)
		el, err := elf.NewFile(bytes.NewReader(data))
		require.NoError(t, err)
		for _, p := range el.Progs {
			assert.NotEqual(t, elf.PT_INTERP, p.Type, "%s must be linked statically: the image has no dynamic loader", c)
		}
		libs, _ := el.ImportedLibraries()
		assert.Empty(t, libs, "%s links no shared library", c)
	}
	for _, name := range []string{"usr/bin/busybox", "etc/passwd", "etc/group", "tmp/", "var/tmp/"} {
		assert.Contains(t, rootfs, name)
	}
	assert.Equal(t, "/usr/bin/busybox", rootfs["usr/bin/sh"].Linkname)

	again, err := BuildServiceImage(ctx, ServiceOptions{CacheDir: cache})
	require.NoError(t, err)
	assert.Equal(t, *img, *again, "nothing changed: the cached archive is reused")
}
