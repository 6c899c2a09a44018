package signing_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imagemode/imagemode/registry"
	"github.com/imagemode/imagemode/registry/localregistry"
	"github.com/imagemode/imagemode/registry/signing"
	"github.com/imagemode/imagemode/registry/signing/signingtest"
	"github.com/imagemode/imagemode/testimages"
)

// TestSignAndVerifyAgainstLocalRegistry signs an image in the real TLS+auth registry, which stores the
// signature as a sigstore attachment and serves it back; the policy evaluation accepts it with the right
// key only, refuses an unsigned image, and refuses a valid signature copied onto another digest.
func TestSignAndVerifyAgainstLocalRegistry(t *testing.T) {
	reg := localregistry.StartForTest(t)
	ctx := context.Background()
	sys := reg.SystemContext()
	signed, err := testimages.Push(ctx, sys, testimages.Options{}, reg.Ref("os/layered", ":a"))
	require.NoError(t, err)
	unsigned, err := testimages.Push(ctx, sys, testimages.Options{Version: "9.9.9"}, reg.Ref("os/layered", ":b"))
	require.NoError(t, err)
	require.NotEqual(t, signed, unsigned)

	kp, wrong := signingtest.NewKeyPair(t), signingtest.NewKeyPair(t)
	key := kp.Key(t)
	res, err := signing.Sign(ctx, sys, signed, key)
	require.NoError(t, err)
	require.False(t, res.AlreadySigned)

	// The registry stores the attachment under the .sig tag, and the image's digest is unchanged.
	info, err := registry.Inspect(ctx, sys, reg.Ref("os/layered", ":"+signing.SignatureTag(digestOf(t, signed))))
	require.NoError(t, err)
	require.NotEmpty(t, info.Digest)
	got, err := registry.ResolveDigest(ctx, sys, reg.Ref("os/layered", ":a"))
	require.NoError(t, err)
	require.Equal(t, signed, got)

	v, err := signing.Verify(ctx, sys, signed, kp.PublicPEM)
	require.NoError(t, err)
	require.True(t, v.Verified, v.Describe())
	// Either of two keys (a rotation) accepts it.
	v, err = signing.Verify(ctx, sys, signed, wrong.PublicPEM, kp.PublicPEM)
	require.NoError(t, err)
	require.True(t, v.Verified, v.Describe())

	// Signing again adds nothing.
	res, err = signing.Sign(ctx, sys, signed, key)
	require.NoError(t, err)
	require.True(t, res.AlreadySigned)

	v, err = signing.Verify(ctx, sys, signed, wrong.PublicPEM)
	require.NoError(t, err)
	require.False(t, v.Verified)
	require.Equal(t, signing.RefusedWrongKey, v.Refusal, v.Describe())

	v, err = signing.Verify(ctx, sys, unsigned, kp.PublicPEM)
	require.NoError(t, err)
	require.Equal(t, signing.RefusedUnsigned, v.Refusal, v.Describe())

	require.NoError(t, signingtest.CopySignatures(ctx, sys, signed, unsigned))
	v, err = signing.Verify(ctx, sys, unsigned, kp.PublicPEM)
	require.NoError(t, err)
	require.Equal(t, signing.RefusedOtherDigest, v.Refusal, v.Describe())

	// Provenance: an in-toto statement signed as a DSSE envelope, stored as the image's attestation.
	st, err := signing.Statement(signed, signing.Provenance{BaseImage: unsigned, Containerfiles: map[string]string{"noarch": strings.Repeat("c", 64)},
		RenderedConfig: "rendered-worker-1", RenderedConfigSHA256: strings.Repeat("d", 64), BuilderImage: "quay.io/imagemode/imagemode:test",
		BuildStart: time.Unix(1000, 0), BuildEnd: time.Unix(1060, 0), Build: "layered-image-1", BuildUID: "uid-1", MachineOSConfig: "layered-image"})
	require.NoError(t, err)
	attDigest, err := signing.Attest(ctx, sys, signed, key, st)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(attDigest, "sha256:"))
	got2, err := signing.ReadProvenance(ctx, sys, signed, wrong.PublicPEM, kp.PublicPEM)
	require.NoError(t, err)
	require.JSONEq(t, string(st), string(got2))
	require.Contains(t, string(got2), `"predicateType":"https://slsa.dev/provenance/v1"`)
	_, err = signing.ReadProvenance(ctx, sys, signed, wrong.PublicPEM)
	require.Error(t, err, "provenance accepted with another key")
	_, err = signing.ReadProvenance(ctx, sys, unsigned, kp.PublicPEM)
	require.Error(t, err, "an image without provenance")

	// Deleting an image deletes its signatures and attestations: no .sig or .att tag is left behind, also
	// for the copied signature.
	for _, img := range []string{signed, unsigned} {
		require.NoError(t, registry.Delete(ctx, sys, img))
		sigTag := reg.Ref("os/layered", ":"+signing.SignatureTag(digestOf(t, img)))
		attTag := strings.TrimSuffix(sigTag, ".sig") + ".att"
		for _, ref := range []string{img, sigTag, attTag} {
			exists, err := registry.Exists(ctx, sys, ref)
			require.NoError(t, err)
			require.False(t, exists, "%s left behind", ref)
		}
	}

	// A missing image is an error, not a verdict.
	_, err = signing.Verify(ctx, sys, reg.Ref("os/nothing", "@sha256:"+strings.Repeat("0", 64)), kp.PublicPEM)
	require.Error(t, err)
}

func digestOf(t *testing.T, pullSpec string) string {
	t.Helper()
	for i := len(pullSpec) - 1; i >= 0; i-- {
		if pullSpec[i] == '@' {
			return pullSpec[i+1:]
		}
	}
	t.Fatalf("%s has no digest", pullSpec)
	return ""
}
