package testimages

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/opencontainers/go-digest"
	imgspec "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/oci/layout"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
)

// DefaultVersion is the OS version of the default base image. Another version gives another image (another
// digest), for tests of a base-image update.
const DefaultVersion = "9.6.20261101-0"

// generation changes whenever the way images are assembled changes, so cached layouts are rebuilt.
const generation = "1"

// Labels every base image carries.
const (
	LabelVersion  = "org.opencontainers.image.version"
	LabelBootable = "ostree.bootable"
	LabelBootc    = "containers.bootc"
	LabelTestBase = "io.imagemode.testimage"
)

// Options selects and places a base image.
type Options struct {
	// Version is the OS version written to os-release and the version label; DefaultVersion when empty.
	Version string
	// CacheDir holds built OCI layouts; DefaultCacheDir() when empty.
	CacheDir string
	// PayloadMB, when > 0, adds a second layer of that many MiB of incompressible but reproducible files
	// under /usr/share/imagemode-payload/ (32 files), so the base weighs like a real OS image (RHCOS is
	// 1–2 GB) in pulls and pushes. With 0 the image is the small default one, unchanged.
	PayloadMB int
}

// Layout is a base image written as an OCI image layout directory.
type Layout struct {
	// Dir is the OCI layout directory; the image is tagged "latest" in it.
	Dir string
	// ManifestDigest is the digest of the image manifest, which stays the same when pushed.
	ManifestDigest digest.Digest
}

// DefaultCacheDir returns $IMAGEMODE_CACHE_DIR/testimages, else $XDG_CACHE_HOME/imagemode/testimages, else
// ~/.cache/imagemode/testimages: per machine, outside any clone.
func DefaultCacheDir() string {
	if d := os.Getenv("IMAGEMODE_CACHE_DIR"); d != "" {
		return filepath.Join(d, "testimages")
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "imagemode", "testimages")
}

// BuildLayout returns the base image as an OCI layout, building it into the cache when no layout for the
// same inputs (busybox binary, embedded rootfs, version, generation, payload size) is there yet.
func BuildLayout(opts Options) (*Layout, error) {
	if opts.Version == "" {
		opts.Version = DefaultVersion
	}
	if opts.CacheDir == "" {
		opts.CacheDir = DefaultCacheDir()
	}
	busybox, applets, err := hostBusybox()
	if err != nil {
		return nil, err
	}
	entries, err := rootfsEntries(busybox, applets, opts.Version)
	if err != nil {
		return nil, err
	}
	var layer bytes.Buffer
	if err := writeTar(&layer, entries); err != nil {
		return nil, err
	}
	if opts.PayloadMB < 0 {
		return nil, fmt.Errorf("testimages: PayloadMB %d is negative", opts.PayloadMB)
	}
	key := sha256.Sum256(append([]byte(generation+"\x00"+opts.Version+"\x00"+runtime.GOARCH+"\x00"), layer.Bytes()...))
	if opts.PayloadMB > 0 { // the default image keeps its key, so existing caches stay valid
		key = sha256.Sum256(append(key[:], fmt.Sprintf("\x00payload %s %d", payloadGeneration, opts.PayloadMB)...))
	}
	dir := filepath.Join(opts.CacheDir, "base-"+hex.EncodeToString(key[:])[:16])
	if dgst, err := readLayoutDigest(dir); err == nil {
		return &Layout{Dir: dir, ManifestDigest: dgst}, nil
	}
	if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating cache directory: %w", err)
	}
	tmp, err := os.MkdirTemp(opts.CacheDir, ".build-")
	if err != nil {
		return nil, fmt.Errorf("creating temporary layout directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	dgst, err := writeLayout(tmp, layer.Bytes(), opts.Version, opts.PayloadMB)
	if err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another process may have won the race with an identical layout; use it.
		if existing, rerr := readLayoutDigest(dir); rerr == nil {
			return &Layout{Dir: dir, ManifestDigest: existing}, nil
		}
		return nil, fmt.Errorf("moving layout into the cache: %w", err)
	}
	return &Layout{Dir: dir, ManifestDigest: dgst}, nil
}

// writeLayout writes an OCI layout with one image (tag "latest") whose first layer is the gzipped tar and,
// when payloadMB > 0, whose second layer is the payload.
func writeLayout(dir string, tarball []byte, version string, payloadMB int) (digest.Digest, error) {
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return "", err
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return "", err
	}
	if _, err := zw.Write(tarball); err != nil {
		return "", fmt.Errorf("compressing layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return "", fmt.Errorf("compressing layer: %w", err)
	}
	created := epoch
	config := imgspecv1.Image{
		Created:  &created,
		Platform: imgspecv1.Platform{Architecture: runtime.GOARCH, OS: "linux"},
		Config: imgspecv1.ImageConfig{
			Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"},
			Cmd: []string{"/bin/sh"},
			Labels: map[string]string{
				LabelVersion: version, LabelBootable: "true", LabelBootc: "1", LabelTestBase: "base",
			},
		},
		RootFS:  imgspecv1.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(tarball)}},
		History: []imgspecv1.History{{Created: &created, CreatedBy: "imagemode testimages base " + version}},
	}
	layers := []imgspecv1.Descriptor{descriptor(imgspecv1.MediaTypeImageLayerGzip, gz.Bytes())}
	if payloadMB > 0 {
		p, err := writePayloadLayer(blobs, payloadMB)
		if err != nil {
			return "", err
		}
		config.RootFS.DiffIDs = append(config.RootFS.DiffIDs, p.diffID)
		config.History = append(config.History, imgspecv1.History{Created: &created,
			CreatedBy: fmt.Sprintf("imagemode testimages payload %d MiB", payloadMB)})
		layers = append(layers, imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageLayerGzip, Digest: p.digest, Size: p.size})
	}
	configRaw, err := json.Marshal(config)
	if err != nil {
		return "", err
	}
	man := imgspecv1.Manifest{
		Versioned: imgspec.Versioned{SchemaVersion: 2},
		MediaType: imgspecv1.MediaTypeImageManifest,
		Config:    descriptor(imgspecv1.MediaTypeImageConfig, configRaw),
		Layers:    layers,
	}
	manRaw, err := json.Marshal(man)
	if err != nil {
		return "", err
	}
	manDesc := descriptor(imgspecv1.MediaTypeImageManifest, manRaw)
	manDesc.Annotations = map[string]string{imgspecv1.AnnotationRefName: "latest"}
	index := imgspecv1.Index{Versioned: imgspec.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex,
		Manifests: []imgspecv1.Descriptor{manDesc}}
	indexRaw, err := json.Marshal(index)
	if err != nil {
		return "", err
	}
	for _, b := range [][]byte{gz.Bytes(), configRaw, manRaw} {
		if err := os.WriteFile(filepath.Join(blobs, digest.FromBytes(b).Encoded()), b, 0o644); err != nil {
			return "", fmt.Errorf("writing blob: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, imgspecv1.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, imgspecv1.ImageIndexFile), indexRaw, 0o644); err != nil {
		return "", err
	}
	return manDesc.Digest, nil
}

func descriptor(mediaType string, content []byte) imgspecv1.Descriptor {
	return imgspecv1.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(content), Size: int64(len(content))}
}

// readLayoutDigest returns the manifest digest of a complete cached layout, verifying the manifest blob.
func readLayoutDigest(dir string) (digest.Digest, error) {
	raw, err := os.ReadFile(filepath.Join(dir, imgspecv1.ImageIndexFile))
	if err != nil {
		return "", err
	}
	var index imgspecv1.Index
	if err := json.Unmarshal(raw, &index); err != nil {
		return "", err
	}
	if len(index.Manifests) != 1 {
		return "", errors.New("layout does not hold exactly one manifest")
	}
	d := index.Manifests[0].Digest
	man, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", d.Encoded()))
	if err != nil {
		return "", err
	}
	if digest.FromBytes(man) != d {
		return "", errors.New("manifest blob does not match its digest")
	}
	return d, nil
}

// Push builds (or reuses) the base image and pushes it to dest, a tagged reference such as
// "127.0.0.1:5000/testimages/base:latest", with sys for credentials and CAs. It returns the digested pull
// spec (repo@sha256:…), which equals the layout's manifest digest.
func Push(ctx context.Context, sys *types.SystemContext, opts Options, dest string) (string, error) {
	l, err := BuildLayout(opts)
	if err != nil {
		return "", err
	}
	srcRef, err := layout.NewReference(l.Dir, "latest")
	if err != nil {
		return "", fmt.Errorf("opening layout %s: %w", l.Dir, err)
	}
	named, err := reference.ParseNormalizedNamed(dest)
	if err != nil {
		return "", fmt.Errorf("parsing destination %q: %w", dest, err)
	}
	destRef, err := docker.NewReference(named)
	if err != nil {
		return "", fmt.Errorf("parsing destination %q: %w", dest, err)
	}
	policy, err := signature.NewPolicyContext(&signature.Policy{
		Default: signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()},
	})
	if err != nil {
		return "", err
	}
	defer policy.Destroy()
	manRaw, err := copy.Image(ctx, policy, destRef, srcRef, &copy.Options{
		DestinationCtx:  sys,
		PreserveDigests: true,
	})
	if err != nil {
		return "", fmt.Errorf("pushing base image to %s: %w", dest, err)
	}
	dgst, err := manifest.Digest(manRaw)
	if err != nil {
		return "", err
	}
	if dgst != l.ManifestDigest {
		return "", fmt.Errorf("pushed base image digest %s differs from layout digest %s", dgst, l.ManifestDigest)
	}
	return reference.TrimNamed(named).String() + "@" + dgst.String(), nil
}
