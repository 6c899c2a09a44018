package simhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/directory"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/pkg/blobinfocache/none"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage/pkg/archive"

	"github.com/imagemode/imagemode/daemon"
	"github.com/imagemode/imagemode/registry/signing"
)

// versionLabel is the image label rpm-ostree reports as a deployment's version.
const versionLabel = "org.opencontainers.image.version"

// pull fetches ref with the host's credentials and CAs and unpacks it as content name: the image is copied
// (digests verified) into a dir: layout under <dir>/tmp, its layers are applied in order to a fresh tree,
// and the finished tree is renamed into place, so a failure or cancellation leaves nothing behind.
// authFile is a host path ("" for anonymous pulls).
func (h *Host) pull(ctx context.Context, ref reference.Canonical, authFile, name string) (*contentMeta, error) {
	sys, err := h.systemContext(authFile)
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp(h.path(tmpDir), "pull-")
	if err != nil {
		return nil, fmt.Errorf("creating pull directory: %w", err)
	}
	defer os.RemoveAll(work)

	srcRef, err := docker.NewReference(ref)
	if err != nil {
		return nil, err
	}
	layoutRef, err := directory.NewReference(filepath.Join(work, "image"))
	if err != nil {
		return nil, err
	}
	policy, err := signature.NewPolicyContext(&signature.Policy{
		Default: signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()},
	})
	if err != nil {
		return nil, err
	}
	defer policy.Destroy() //nolint:errcheck // nothing to do about it
	if _, err := copy.Image(ctx, policy, layoutRef, srcRef, &copy.Options{SourceCtx: sys}); err != nil {
		return nil, fmt.Errorf("pulling: %w", err)
	}

	unpack, err := os.MkdirTemp(h.path(contentDir), ".unpack-")
	if err != nil {
		return nil, fmt.Errorf("creating content directory: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(unpack)
		}
	}()
	meta, err := unpackLayout(ctx, layoutRef, filepath.Join(unpack, "rootfs"))
	if err != nil {
		return nil, err
	}
	meta.Digest = ref.Digest().String()
	raw, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(unpack, contentMetaFile), raw, 0o644); err != nil {
		return nil, fmt.Errorf("writing image metadata: %w", err)
	}
	if err := syncTree(unpack); err != nil {
		return nil, err
	}
	if err := os.Rename(unpack, h.path(contentDir, name)); err != nil {
		return nil, fmt.Errorf("moving unpacked image into place: %w", err)
	}
	done = true
	return meta, nil
}

// systemContext is how the host reaches registries: its registries.conf, certs.d and registries.d, and
// authFile (a host path; "" for anonymous pulls).
func (h *Host) systemContext(authFile string) (*types.SystemContext, error) {
	root := h.Root()
	sys := &types.SystemContext{
		// The node's registries.conf, certs.d and registries.d apply, as for rpm-ostree on a real node.
		RootForImplicitAbsolutePaths: string(root),
		DockerPerHostCertDirPath:     root.HostPath(CertsDir),
		RegistriesDirPath:            root.HostPath(daemon.RegistriesDDir),
		BlobInfoCacheDir:             h.path(tmpDir),
		// Never the credentials of the process running the simulation.
		AuthFilePath: h.path(tmpDir, "no-auth.json"),
	}
	if authFile != "" {
		p := root.HostPath(authFile)
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("auth file %s: %w", authFile, err)
		}
		sys.AuthFilePath = p
	}
	return sys, nil
}

// verify checks ref against the host's signature policy (/etc/containers/policy.json) with containers/image's
// policy evaluation; a refusal is an error that says why (signing.Refusal) in containers/image's words.
func (h *Host) verify(ctx context.Context, ref reference.Canonical, authFile string) error {
	sys, err := h.systemContext(authFile)
	if err != nil {
		return err
	}
	policy, err := signature.NewPolicyFromFile(h.Root().HostPath(daemon.SignaturePolicyPath))
	if err != nil {
		return fmt.Errorf("reading the signature policy %s: %w", daemon.SignaturePolicyPath, err)
	}
	v, err := signing.Evaluate(ctx, sys, policy, ref)
	if err != nil {
		return err
	}
	if !v.Verified {
		return &RefusedError{Image: ref.String(), Verification: v}
	}
	return nil
}

// RefusedError is a pull the host's signature policy refused.
type RefusedError struct {
	Image        string
	Verification signing.Verification
}

func (e *RefusedError) Error() string {
	what := map[signing.Refusal]string{
		signing.RefusedUnsigned:        "the image is not signed",
		signing.RefusedWrongKey:        "the image is not signed by a trusted key",
		signing.RefusedOtherDigest:     "the image's signature is for another image (digest)",
		signing.RefusedOtherRepository: "the image's signature is for another repository",
	}[e.Verification.Refusal]
	if what == "" {
		what = "the signature policy refuses it"
	}
	return fmt.Sprintf("image %s refused by the signature policy: %s (%s)", e.Image, what, e.Verification.Message)
}

// unpackLayout applies the layers of the image at layoutRef, in order, to the new directory tree (OCI
// whiteouts remove what lower layers had), and returns its version label.
func unpackLayout(ctx context.Context, layoutRef types.ImageReference, tree string) (*contentMeta, error) {
	src, err := layoutRef.NewImageSource(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("opening pulled image: %w", err)
	}
	defer src.Close()
	raw, mt, err := src.GetManifest(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("reading pulled manifest: %w", err)
	}
	man, err := manifest.FromBlob(raw, mt)
	if err != nil {
		return nil, fmt.Errorf("parsing pulled manifest: %w", err)
	}
	if err := os.MkdirAll(tree, 0o755); err != nil {
		return nil, err
	}
	opts := &archive.TarOptions{IgnoreChownErrors: os.Geteuid() != 0}
	for i, layer := range man.LayerInfos() {
		if err := applyBlob(ctx, src, layer.BlobInfo, tree, opts); err != nil {
			return nil, fmt.Errorf("unpacking layer %d (%s): %w", i, layer.Digest, err)
		}
	}
	meta := &contentMeta{}
	if cfg := man.ConfigInfo(); cfg.Digest != "" {
		rc, _, err := src.GetBlob(ctx, cfg, none.NoCache)
		if err != nil {
			return nil, fmt.Errorf("reading image config: %w", err)
		}
		defer rc.Close()
		var img imgspecv1.Image
		if err := json.NewDecoder(rc).Decode(&img); err != nil {
			return nil, fmt.Errorf("parsing image config: %w", err)
		}
		meta.Version = img.Config.Labels[versionLabel]
	}
	return meta, nil
}

// applyBlob applies one layer blob (compressed or not) to tree.
func applyBlob(ctx context.Context, src types.ImageSource, info types.BlobInfo, tree string, opts *archive.TarOptions) error {
	rc, _, err := src.GetBlob(ctx, info, none.NoCache)
	if err != nil {
		return err
	}
	defer rc.Close()
	layer, err := archive.DecompressStream(ctxReader{ctx, rc})
	if err != nil {
		return err
	}
	defer layer.Close()
	_, err = archive.UnpackLayer(tree, layer, opts)
	return err
}

// ctxReader stops a read once ctx is done, so a long unpack is cancellable.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// syncTree flushes the unpacked tree to disk (one syncfs through its root), so the rename that publishes it
// never exposes missing content after a crash.
func syncTree(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syncfs(f); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
