package verifycmd_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imagemode/imagemode/cmd/imagemode/internal/verifycmd"
	"github.com/imagemode/imagemode/registry/localregistry"
	"github.com/imagemode/imagemode/registry/signing"
	"github.com/imagemode/imagemode/registry/signing/signingtest"
	"github.com/imagemode/imagemode/testimages"
)

// TestVerifyCommand runs `imagemode verify` against the real registry: a signed image verifies and names
// its key (also among two keys, as during a rotation); another key and an unsigned image are refused with
// exit status 1 and the reason.
func TestVerifyCommand(t *testing.T) {
	reg := localregistry.StartForTest(t)
	ctx := context.Background()
	sys := reg.SystemContext()
	image, err := testimages.Push(ctx, sys, testimages.Options{}, reg.Ref("os/layered", ":signed"))
	require.NoError(t, err)
	unsigned, err := testimages.Push(ctx, sys, testimages.Options{Version: "7.7.7"}, reg.Ref("os/layered", ":unsigned"))
	require.NoError(t, err)
	kp, other := signingtest.NewKeyPair(t), signingtest.NewKeyPair(t)
	_, err = signing.Sign(ctx, sys, image, kp.Key(t))
	require.NoError(t, err)
	dir := t.TempDir()
	pub, otherPub := filepath.Join(dir, "cosign.pub"), filepath.Join(dir, "other.pub")
	require.NoError(t, os.WriteFile(pub, kp.PublicPEM, 0o644))
	require.NoError(t, os.WriteFile(otherPub, other.PublicPEM, 0o644))
	fp, err := signing.Fingerprint(kp.PublicPEM)
	require.NoError(t, err)

	run := func(args ...string) (string, error) {
		cmd := verifycmd.NewCommand()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(append(args, "--authfile", reg.AuthFile, "--cert-dir", reg.CertDir))
		err := cmd.ExecuteContext(ctx)
		return out.String(), err
	}
	out, err := run(image, "--key", pub)
	require.NoError(t, err, out)
	assert.Equal(t, image+": verified: sigstore signature by key "+fp+"\nProvenance: <none> (no provenance of this image signed by the key)\n", out)

	st, err := signing.Statement(image, signing.Provenance{BaseImage: unsigned, Containerfiles: map[string]string{"noarch": "cf"},
		RenderedConfig: "rendered-worker-1", RenderedConfigSHA256: "mc", BuilderImage: "quay.io/imagemode/imagemode:v1",
		BuildStart: time.Unix(0, 0), BuildEnd: time.Unix(60, 0), Build: "layered-image-1", BuildUID: "uid-1", MachineOSConfig: "layered-image"})
	require.NoError(t, err)
	_, err = signing.Attest(ctx, sys, image, kp.Key(t), st)
	require.NoError(t, err)
	out, err = run(image, "--key", pub)
	require.NoError(t, err, out)
	for _, want := range []string{"Provenance (in-toto, https://slsa.dev/provenance/v1, signed by the same key):",
		"  MachineOSBuild:  layered-image-1 (uid uid-1)", "  Rendered config: rendered-worker-1 (sha256 mc)", "  Base image:      " + unsigned,
		"  Builder:         quay.io/imagemode/imagemode:v1", "  Finished:        1970-01-01T00:01:00Z"} {
		assert.Contains(t, out, want+"\n")
	}

	out, err = run(image, "--key", otherPub, "--key", pub, "-o", "json")
	require.NoError(t, err, out)
	assert.Contains(t, out, `"verified": true`)
	assert.Contains(t, out, `"key": "`+fp+`"`)

	out, err = run(image, "--key", otherPub)
	require.ErrorIs(t, err, verifycmd.ErrRefused)
	assert.Contains(t, out, image+": refused (WrongKey): ")

	out, err = run(unsigned, "--key", pub)
	require.ErrorIs(t, err, verifycmd.ErrRefused)
	assert.Contains(t, out, unsigned+": refused (Unsigned): A signature was required, but no signature exists")

	_, err = run(image)
	require.ErrorContains(t, err, "--key is required")
}
