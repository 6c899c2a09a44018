package signing

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/signature/signer"
	"go.podman.io/image/v5/signature/sigstore"
	"go.podman.io/image/v5/types"
)

// SignResult is what Sign did.
type SignResult struct {
	// AlreadySigned: the image already had a valid signature from the key, nothing was written.
	AlreadySigned bool
}

// Sign signs the image pullSpec (repo@sha256:…) in its registry with key, the way `skopeo copy
// --sign-by-sigstore-private-key` does: the image is copied onto itself (its manifest kept byte for byte:
// the digest does not change, no blob is uploaded again) with a sigstore signer, which stores the signature
// as a sigstore attachment (<repo>:sha256-<digest>.sig). An image that already carries a valid signature
// from key is left as it is, so signing again after a crash adds nothing. sys carries the registry's
// credentials and CAs; its RegistriesDirPath is replaced by one enabling sigstore attachments.
func Sign(ctx context.Context, sys *types.SystemContext, pullSpec string, key *PrivateKey) (SignResult, error) {
	ref, err := parseDigested(pullSpec)
	if err != nil {
		return SignResult{}, err
	}
	work, err := os.MkdirTemp("", "imagemode-sign-")
	if err != nil {
		return SignResult{}, fmt.Errorf("signing %s: %w", pullSpec, err)
	}
	defer os.RemoveAll(work)
	sys, err = withAttachments(sys, work)
	if err != nil {
		return SignResult{}, err
	}
	if v, err := verifyRef(ctx, sys, ref, [][]byte{key.PublicKeyPEM}); err != nil {
		return SignResult{}, err
	} else if v.Verified {
		return SignResult{AlreadySigned: true}, nil
	}
	s, err := newSigner(work, key)
	if err != nil {
		return SignResult{}, err
	}
	defer s.Close()
	imgRef, err := docker.NewReference(ref)
	if err != nil {
		return SignResult{}, err
	}
	pc, err := signature.NewPolicyContext(&signature.Policy{Default: signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()}})
	if err != nil {
		return SignResult{}, err
	}
	defer pc.Destroy() //nolint:errcheck // nothing to do about it
	raw, err := copy.Image(ctx, pc, imgRef, imgRef, &copy.Options{
		SourceCtx: sys, DestinationCtx: sys, Signers: []*signer.Signer{s}, PreserveDigests: true, ReportWriter: io.Discard,
	})
	if err != nil {
		return SignResult{}, fmt.Errorf("signing %s: %w", pullSpec, err)
	}
	if got, err := manifest.Digest(raw); err != nil || got != ref.Digest() {
		return SignResult{}, fmt.Errorf("signing %s: the registry's manifest changed to %s", pullSpec, got)
	}
	return SignResult{}, nil
}

// newSigner hands key to sigstore's signer, which reads keys from files only: the key is written, mode
// 0600, into the private directory work (removed by the caller) and removed again as soon as it is loaded.
func newSigner(work string, key *PrivateKey) (*signer.Signer, error) {
	path := filepath.Join(work, "key.pem")
	if err := os.WriteFile(path, key.pem, 0o600); err != nil {
		return nil, fmt.Errorf("preparing the signing key: %w", err)
	}
	defer os.Remove(path)
	s, err := sigstore.NewSigner(sigstore.WithPrivateKeyFile(path, key.passphrase))
	if err != nil {
		// ParsePrivateKey accepted the key already; the library's message names the file, never its bytes.
		return nil, &KeyError{Reason: ReasonKeyMalformed, Detail: "the sigstore signer refused the key"}
	}
	return s, nil
}

// withAttachments returns a copy of sys whose registries.d (under work) turns sigstore attachments on for
// every registry: signatures are written to and read from the <repo>:sha256-<digest>.sig tags.
func withAttachments(sys *types.SystemContext, work string) (*types.SystemContext, error) {
	out := types.SystemContext{}
	if sys != nil {
		out = *sys
	}
	dir := filepath.Join(work, "registries.d")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "sigstore-attachments.yaml"), []byte("default-docker:\n  use-sigstore-attachments: true\n"), 0o600); err != nil {
		return nil, err
	}
	out.RegistriesDirPath = dir
	return &out, nil
}

// parseDigested parses repo@sha256:….
func parseDigested(pullSpec string) (reference.Canonical, error) {
	named, err := reference.ParseNormalizedNamed(pullSpec)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", pullSpec, err)
	}
	c, ok := named.(reference.Canonical)
	if !ok {
		return nil, fmt.Errorf("image %q: not a pull spec by digest (repo@sha256:…)", pullSpec)
	}
	return c, nil
}

// SignatureTag is the tag sigstore attachments of the image with manifest digest dgst ("sha256:…") are
// stored under in its repository: "sha256-<hex>.sig".
func SignatureTag(dgst string) string {
	return strings.Replace(dgst, ":", "-", 1) + ".sig"
}
