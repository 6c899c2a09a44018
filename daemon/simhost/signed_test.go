package simhost

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagemode/imagemode/daemon"
	"github.com/imagemode/imagemode/registry/localregistry"
	"github.com/imagemode/imagemode/registry/signing"
	"github.com/imagemode/imagemode/registry/signing/signingtest"
	"github.com/imagemode/imagemode/testimages"
)

// TestSignedRebaseAgainstRegistry: with the node's policy requiring the pool's key for the repository, a
// signed image in the real registry is staged as ostree-image-signed; an image pushed by hand without a
// signature, one signed by another key and one carrying a copy of another image's valid signature are each
// refused before anything is pulled or staged, with an error that says which.
func TestSignedRebaseAgainstRegistry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	reg := localregistry.StartForTest(t)
	sys := reg.SystemContext()
	push := func(version, tag string) string {
		t.Helper()
		img, err := testimages.Push(ctx, sys, testimages.Options{Version: version}, reg.Ref("os/layered", ":"+tag))
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	base := push("", "base")
	signed, unsigned, wrongKey, copied := push("2.0.0", "signed"), push("3.0.0", "unsigned"), push("4.0.0", "wrong-key"), push("5.0.0", "copied")
	kp, other := signingtest.NewKeyPair(t), signingtest.NewKeyPair(t)
	if _, err := signing.Sign(ctx, sys, signed, kp.Key(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := signing.Sign(ctx, sys, wrongKey, other.Key(t)); err != nil {
		t.Fatal(err)
	}
	if err := signingtest.CopySignatures(ctx, sys, signed, copied); err != nil {
		t.Fatal(err)
	}

	ca, err := os.ReadFile(filepath.Join(reg.CertDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Provision(ctx, base, reg.DockerConfigJSON(), map[string][]byte{strings.ReplaceAll(reg.Host, ":", ".."): ca}); err != nil {
		t.Fatal(err)
	}
	if err := daemon.WriteSignaturePolicy(h.Root(), reg.Host+"/os/layered", [][]byte{kp.PublicPEM}); err != nil {
		t.Fatal(err)
	}
	contentBefore := contentNames(t, h)
	osu := h.OS()
	for _, tc := range []struct {
		image   string
		refusal signing.Refusal
		says    string
	}{
		{unsigned, signing.RefusedUnsigned, "the image is not signed"},
		{wrongKey, signing.RefusedWrongKey, "not signed by a trusted key"},
		{copied, signing.RefusedOtherDigest, "signature is for another image"},
	} {
		err := osu.RebaseSigned(ctx, tc.image, KubeletAuthFile)
		var refused *RefusedError
		if !errors.As(err, &refused) || refused.Verification.Refusal != tc.refusal || !strings.Contains(err.Error(), tc.says) {
			t.Fatalf("rebase to %s: want refusal %s saying %q, got %v", tc.image, tc.refusal, tc.says, err)
		}
		st, err := osu.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Staged != nil || st.BootedImage() != base {
			t.Fatalf("a refused image changed the deployments: %+v", st.Deployments)
		}
		if got := contentNames(t, h); strings.Join(got, ",") != strings.Join(contentBefore, ",") {
			t.Fatalf("a refused image was unpacked: %v (before %v)", got, contentBefore)
		}
	}

	// The unverified pull (an unsigned pool) still takes any image; the signed one is verified and staged.
	if err := osu.RebaseSigned(ctx, signed, KubeletAuthFile); err != nil {
		t.Fatal(err)
	}
	st, err := osu.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Staged == nil || st.Staged.ContainerImageReference != "ostree-image-signed:docker://"+signed {
		t.Fatalf("signed image not staged as ostree-image-signed: %+v", st.Deployments)
	}
	if got := st.Staged.Image(); got != signed {
		t.Fatalf("staged image %q, want %q", got, signed)
	}
	// A key rotation: the node accepts either key while it lasts.
	if err := daemon.WriteSignaturePolicy(h.Root(), reg.Host+"/os/layered", [][]byte{other.PublicPEM, kp.PublicPEM}); err != nil {
		t.Fatal(err)
	}
	if err := osu.RebaseSigned(ctx, wrongKey, KubeletAuthFile); err != nil {
		t.Fatalf("during a rotation, the other key's image: %v", err)
	}
}

func contentNames(t *testing.T, h *Host) []string {
	t.Helper()
	entries, err := os.ReadDir(h.path(contentDir))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}
