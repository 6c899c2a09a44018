package testimages

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	imgspec "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// ServiceImageName is the service image the manifests name (manifests/deploy): the controller Deployment,
// the daemon DaemonSet and, through the controller's --builder-image, the build pods.
const ServiceImageName = "quay.io/imagemode/imagemode:latest"

// serviceGeneration changes whenever the way the service image is assembled changes.
const serviceGeneration = "1"

// ServiceCommands are the project's programs the service image holds in /usr/bin, as Containerfile's
// `go build ./cmd/...` (without the embedded local default) puts them there.
var ServiceCommands = []string{"imagemode", "imagemode-builder", "imagemode-controller", "imagemode-daemon"}

// caBundlePath is the system trust the image gets (Debian's ca-certificates), for registries with public CAs.
const caBundlePath = "/etc/ssl/certs/ca-certificates.crt"

// ServiceOptions places the service image.
type ServiceOptions struct {
	// ModuleDir is the module's root (where go.mod is); found upward from the working directory when empty.
	ModuleDir string
	// CacheDir holds the built binaries and archives; DefaultCacheDir() when empty.
	CacheDir string
	// Name is the image's name in the archive (what `ctr images import` calls it); ServiceImageName when empty.
	Name string
	// Output receives the Go build's output; nil keeps it (it is part of the error when the build fails).
	Output io.Writer
}

// ServiceImage is the service image written as an OCI image-layout tar (what `ctr images import` and
// `skopeo copy oci-archive:` read).
type ServiceImage struct {
	// Archive is the tar's path.
	Archive string
	// Name is the image's name.
	Name string
	// ManifestDigest is the image manifest's digest.
	ManifestDigest digest.Digest
}

// BuildServiceImage builds the same image Containerfile describes, without network access: the project's
// programs (ServiceCommands) linked statically from ModuleDir, on a root file system of busybox-static (a
// shell and tools for `kubectl exec`), the system CA bundle, root and nobody users and writable /tmp and
// /var/tmp. Builds run in-process with the buildah library (chroot isolation, the storage root a pod
// volume), so the image needs no buildah CLI, runc or crun, as in Containerfile. The Go build is incremental
// (go build's own up-to-date check); the archive is kept in CacheDir keyed by the bytes of everything in it.
func BuildServiceImage(ctx context.Context, opts ServiceOptions) (*ServiceImage, error) {
	if opts.Name == "" {
		opts.Name = ServiceImageName
	}
	if opts.CacheDir == "" {
		opts.CacheDir = DefaultCacheDir()
	}
	if opts.ModuleDir == "" {
		dir, err := moduleRoot()
		if err != nil {
			return nil, err
		}
		opts.ModuleDir = dir
	}
	binDir := filepath.Join(opts.CacheDir, "service-bin")
	if err := buildServiceCommands(ctx, opts.ModuleDir, binDir, opts.Output); err != nil {
		return nil, err
	}
	entries, err := serviceEntries(binDir)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	fmt.Fprintf(h, "service %s\x00%s\x00%s\x00", serviceGeneration, opts.Name, runtime.GOARCH)
	for _, e := range entries {
		fmt.Fprintf(h, "%s\x00%d\x00%o\x00%s\x00", e.name, e.typ, e.mode, e.linkname)
		h.Write(e.data)
	}
	archive := filepath.Join(opts.CacheDir, "service-"+hex.EncodeToString(h.Sum(nil))[:16]+".tar")
	if dgst, err := archiveDigest(archive); err == nil {
		return &ServiceImage{Archive: archive, Name: opts.Name, ManifestDigest: dgst}, nil
	}
	tmp, err := os.CreateTemp(opts.CacheDir, ".service-")
	if err != nil {
		return nil, fmt.Errorf("creating service image archive: %w", err)
	}
	defer os.Remove(tmp.Name())
	dgst, err := writeServiceArchive(tmp, entries, opts.Name)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("writing service image archive: %w", err)
	}
	if err := os.Rename(tmp.Name(), archive); err != nil {
		return nil, fmt.Errorf("moving service image archive into the cache: %w", err)
	}
	return &ServiceImage{Archive: archive, Name: opts.Name, ManifestDigest: dgst}, nil
}

// buildServiceCommands links ServiceCommands statically into binDir with the module's build tags (the
// packages are those the tests compile, so a warm build only links, and only what changed).
func buildServiceCommands(ctx context.Context, moduleDir, binDir string, out io.Writer) error {
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", binDir, err)
	}
	args := []string{"build", "-ldflags=-s -w -linkmode=external -extldflags=-static", "-o", binDir + "/"}
	for _, c := range ServiceCommands {
		args = append(args, "./cmd/"+c)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1", "GOTOOLCHAIN=local",
		"GOFLAGS=-buildvcs=false -tags=containers_image_openpgp,exclude_graphdriver_btrfs")
	raw, err := cmd.CombinedOutput()
	if out != nil {
		out.Write(raw)
	}
	if err != nil {
		return fmt.Errorf("building the service image's programs (go %s in %s): %w\n%s", strings.Join(args, " "), moduleDir, err, raw)
	}
	return nil
}

// serviceEntries is the service image's root file system.
func serviceEntries(binDir string) ([]entry, error) {
	busybox, applets, err := hostBusybox()
	if err != nil {
		return nil, err
	}
	m := map[string]entry{}
	add := func(e entry) { m[e.name] = e }
	for _, d := range []struct {
		name string
		mode int64
	}{
		{"usr", 0o755}, {"usr/bin", 0o755}, {"usr/sbin", 0o755}, {"etc", 0o755}, {"etc/ssl", 0o755},
		{"etc/ssl/certs", 0o755}, {"etc/containers", 0o755}, {"var", 0o755}, {"var/lib", 0o755},
		{"var/tmp", 0o1777}, {"tmp", 0o1777}, {"run", 0o755}, {"proc", 0o555}, {"sys", 0o555}, {"dev", 0o755},
		{"root", 0o700}, {"rootfs", 0o755},
	} {
		add(entry{name: d.name, typ: tar.TypeDir, mode: d.mode})
	}
	for link, target := range map[string]string{"bin": "usr/bin", "sbin": "usr/sbin"} {
		add(entry{name: link, typ: tar.TypeSymlink, mode: 0o777, linkname: target})
	}
	add(entry{name: "usr/bin/busybox", typ: tar.TypeReg, mode: 0o755, data: busybox})
	for _, a := range applets {
		if name := appletPath(a); name != "" && name != "usr/bin/busybox" {
			add(entry{name: name, typ: tar.TypeSymlink, mode: 0o777, linkname: "/usr/bin/busybox"})
		}
	}
	for _, c := range ServiceCommands {
		data, err := os.ReadFile(filepath.Join(binDir, c))
		if err != nil {
			return nil, fmt.Errorf("reading built program: %w", err)
		}
		add(entry{name: "usr/bin/" + c, typ: tar.TypeReg, mode: 0o755, data: data})
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/tmp:/sbin/nologin\n",
		"etc/group":  "root:x:0:\nnobody:x:65534:\n",
		// The statically linked programs resolve names with Go's own resolver, which reads this.
		"etc/nsswitch.conf": "hosts: files dns\n",
		// What Containerfile's Fedora base ships; the builder writes its own policy per build anyway.
		"etc/containers/policy.json": `{"default":[{"type":"insecureAcceptAnything"}]}` + "\n",
	}
	for name, content := range files {
		add(entry{name: name, typ: tar.TypeReg, mode: 0o644, data: []byte(content)})
	}
	if ca, err := os.ReadFile(caBundlePath); err == nil {
		add(entry{name: strings.TrimPrefix(caBundlePath, "/"), typ: tar.TypeReg, mode: 0o644, data: ca})
		add(entry{name: "etc/pki/tls/certs/ca-bundle.crt", typ: tar.TypeSymlink, mode: 0o777, linkname: caBundlePath})
		for _, d := range []string{"etc/pki", "etc/pki/tls", "etc/pki/tls/certs"} {
			add(entry{name: d, typ: tar.TypeDir, mode: 0o755})
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading the system CA bundle: %w", err)
	}
	out := make([]entry, 0, len(m))
	for _, e := range m {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// writeServiceArchive writes an OCI image-layout tar of one image (one uncompressed layer: the programs
// are most of it and compress poorly, and containerd unpacks a plain tar at once) to f, named name both
// for containerd (io.containerd.image.name) and by its tag (org.opencontainers.image.ref.name).
func writeServiceArchive(f *os.File, entries []entry, name string) (digest.Digest, error) {
	layer, err := os.CreateTemp(filepath.Dir(f.Name()), ".service-layer-")
	if err != nil {
		return "", err
	}
	defer os.Remove(layer.Name())
	defer layer.Close()
	digester := digest.Canonical.Digester()
	if err := writeTar(io.MultiWriter(layer, digester.Hash()), entries); err != nil {
		return "", err
	}
	layerSize, err := layer.Seek(0, io.SeekCurrent)
	if err != nil {
		return "", err
	}
	layerDigest := digester.Digest()
	created := epoch
	config := imgspecv1.Image{
		Created:  &created,
		Platform: imgspecv1.Platform{Architecture: runtime.GOARCH, OS: "linux"},
		Config: imgspecv1.ImageConfig{
			Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin", "HOME=/root"},
			Cmd:        []string{"/bin/sh"},
			User:       "0",
			WorkingDir: "/",
			Labels:     map[string]string{"org.opencontainers.image.title": "imagemode", LabelTestBase: "service"},
		},
		RootFS:  imgspecv1.RootFS{Type: "layers", DiffIDs: []digest.Digest{layerDigest}},
		History: []imgspecv1.History{{Created: &created, CreatedBy: "imagemode testimages service image"}},
	}
	configRaw, err := json.Marshal(config)
	if err != nil {
		return "", err
	}
	man := imgspecv1.Manifest{
		Versioned: imgspec.Versioned{SchemaVersion: 2},
		MediaType: imgspecv1.MediaTypeImageManifest,
		Config:    descriptor(imgspecv1.MediaTypeImageConfig, configRaw),
		Layers:    []imgspecv1.Descriptor{{MediaType: imgspecv1.MediaTypeImageLayer, Digest: layerDigest, Size: layerSize}},
	}
	manRaw, err := json.Marshal(man)
	if err != nil {
		return "", err
	}
	manDesc := descriptor(imgspecv1.MediaTypeImageManifest, manRaw)
	tag := name[strings.LastIndex(name, ":")+1:]
	if strings.Contains(tag, "/") { // no tag: name:latest
		tag = "latest"
	}
	manDesc.Annotations = map[string]string{"io.containerd.image.name": name, imgspecv1.AnnotationRefName: tag}
	manDesc.Platform = &imgspecv1.Platform{Architecture: runtime.GOARCH, OS: "linux"}
	indexRaw, err := json.Marshal(imgspecv1.Index{Versioned: imgspec.Versioned{SchemaVersion: 2},
		MediaType: imgspecv1.MediaTypeImageIndex, Manifests: []imgspecv1.Descriptor{manDesc}})
	if err != nil {
		return "", err
	}

	tw := tar.NewWriter(f)
	writeFile := func(name string, size int64, body io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: size, ModTime: epoch}); err != nil {
			return err
		}
		_, err := io.Copy(tw, body)
		return err
	}
	small := func(name string, b []byte) error { return writeFile(name, int64(len(b)), strings.NewReader(string(b))) }
	if err := small(imgspecv1.ImageLayoutFile, []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return "", err
	}
	if err := small(imgspecv1.ImageIndexFile, indexRaw); err != nil {
		return "", err
	}
	for _, b := range [][]byte{configRaw, manRaw} {
		if err := small("blobs/sha256/"+digest.FromBytes(b).Encoded(), b); err != nil {
			return "", err
		}
	}
	if _, err := layer.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	if err := writeFile("blobs/sha256/"+layerDigest.Encoded(), layerSize, layer); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	return manDesc.Digest, f.Sync()
}

// archiveDigest returns the manifest digest named by a complete archive's index.json (written before the
// blobs, so an archive that reads to its end with an index is whole: archives are renamed into place).
func archiveDigest(path string) (digest.Digest, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err != nil {
			return "", fmt.Errorf("reading %s: %w", path, err)
		}
		if hdr.Name != imgspecv1.ImageIndexFile {
			continue
		}
		var index imgspecv1.Index
		if err := json.NewDecoder(tr).Decode(&index); err != nil {
			return "", err
		}
		if len(index.Manifests) != 1 {
			return "", errors.New("archive does not hold exactly one image")
		}
		return index.Manifests[0].Digest, nil
	}
}

// moduleRoot finds the directory holding go.mod, upward from the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("finding the module root: no go.mod above the working directory")
		}
		dir = parent
	}
}
