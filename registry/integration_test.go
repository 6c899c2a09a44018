package registry

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.podman.io/image/v5/types"

	"github.com/imagemode/imagemode/registry/localregistry"
)

// TestDeleteAgainstLocalRegistry runs inspect, exists and delete against a real registry with TLS and
// htpasswd auth, and classifies the errors it really returns.
func TestDeleteAgainstLocalRegistry(t *testing.T) {
	reg := localregistry.StartForTest(t)
	ctx := context.Background()
	sys := reg.SystemContext()
	const repo = "os/layered"
	seed := newSeeder(t, reg, repo)
	images := seed.push(t, "img", 3)
	require.Len(t, images, 3)
	require.NotEqual(t, images[0], images[1])

	for _, img := range images {
		ok, err := Exists(ctx, sys, img)
		require.NoError(t, err)
		require.True(t, ok, img)
	}
	resolved, err := ResolveDigest(ctx, sys, reg.Ref(repo, ":img-1"))
	require.NoError(t, err)
	require.Equal(t, images[1], resolved)

	// Delete by digest: gone, the others stay; deleting again is a success.
	require.NoError(t, Delete(ctx, sys, images[1]))
	gone, err := Exists(ctx, sys, images[1])
	require.NoError(t, err)
	assert.False(t, gone)
	for _, img := range []string{images[0], images[2]} {
		ok, err := Exists(ctx, sys, img)
		require.NoError(t, err)
		assert.True(t, ok, img)
	}
	require.NoError(t, Delete(ctx, sys, images[1]), "deleting an already deleted digest")

	wrongPassword := reg.SystemContext()
	wrongPassword.AuthFilePath = ""
	wrongPassword.DockerAuthConfig = &types.DockerAuthConfig{Username: reg.Username, Password: "wrong-" + reg.Password}
	noCA := reg.SystemContext()
	noCA.DockerCertPath = t.TempDir()
	noCA.RootForImplicitAbsolutePaths = t.TempDir()

	tests := []struct {
		name string
		// run performs the operation and returns its error.
		run      func() error
		wantKind Kind
		// wantText is a substring the real error must contain.
		wantText string
	}{
		{
			name:     "inspect of a missing tag",
			run:      func() error { _, err := Inspect(ctx, sys, reg.Ref(repo, ":nosuchtag")); return err },
			wantKind: KindNotFound,
			wantText: "reading manifest nosuchtag in " + reg.Host + "/" + repo + ": manifest unknown",
		},
		{
			name:     "inspect of a missing digest",
			run:      func() error { _, err := Inspect(ctx, sys, reg.Ref(repo, "@"+dgA)); return err },
			wantKind: KindNotFound,
			wantText: "reading manifest " + dgA + " in " + reg.Host + "/" + repo + ": manifest unknown",
		},
		{
			name:     "inspect in a missing repository",
			run:      func() error { _, err := Inspect(ctx, sys, reg.Ref("no/such", ":v1")); return err },
			wantKind: KindNotFound,
			wantText: "manifest unknown",
		},
		{
			name: "delete of a missing digest, unmasked",
			run: func() error {
				return newImageError("deleting", images[1], mustRef(t, images[1]).DeleteImage(ctx, sys))
			},
			wantKind: KindNotFound,
			wantText: "Image may not exist or is not stored with a v2 Schema in a v2 registry",
		},
		{
			name:     "delete with a wrong password",
			run:      func() error { return Delete(ctx, wrongPassword, images[0]) },
			wantKind: KindAccessDenied,
			wantText: "authentication required",
		},
		{
			name:     "exists with a wrong password",
			run:      func() error { _, err := Exists(ctx, wrongPassword, images[0]); return err },
			wantKind: KindAccessDenied,
		},
		{
			name:     "delete without the registry's CA",
			run:      func() error { return Delete(ctx, noCA, images[0]) },
			wantKind: KindUntrusted,
			wantText: "x509: certificate signed by unknown authority",
		},
		{
			name:     "delete by tag is refused",
			run:      func() error { return Delete(ctx, sys, reg.Ref(repo, ":img-0")) },
			wantKind: KindInvalid,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			require.Error(t, err)
			t.Logf("error: %v", err)
			assert.Equal(t, tc.wantKind, KindOf(err))
			assert.Contains(t, err.Error(), tc.wantText)
			assert.NotContains(t, err.Error(), reg.Password, "errors must not carry secrets")
		})
	}
	still, err := Exists(ctx, sys, images[0])
	require.NoError(t, err)
	assert.True(t, still, "refused deletes must leave the image")

	// A batch with bounded concurrency, including an image that is already gone.
	batch := append(seed.push(t, "batch", 4), images[1])
	require.Empty(t, Deleter{}.DeleteAll(ctx, sys, batch, 3))
	for _, img := range batch {
		ok, err := Exists(ctx, sys, img)
		require.NoError(t, err)
		assert.False(t, ok, img)
	}

	// Registry stopped: the delete is retried, then reported as transient.
	require.NoError(t, reg.Stop())
	fs := &fakeSleeper{}
	err = Deleter{Attempts: 3, Sleep: fs.sleep}.Delete(ctx, sys, images[2])
	require.Error(t, err)
	t.Logf("registry stopped: %v", err)
	assert.True(t, IsTransient(err), "want transient, got %v", err)
	assert.True(t, strings.Contains(err.Error(), "connection refused"), err.Error())
	assert.Equal(t, []time.Duration{DefaultBackoff, 2 * DefaultBackoff}, fs.waits)
	_, err = Exists(ctx, sys, images[2])
	assert.True(t, IsTransient(err), "exists on a stopped registry: %v", err)
}

func mustRef(t *testing.T, pullspec string) types.ImageReference {
	t.Helper()
	ref, err := ParseReference(pullspec)
	require.NoError(t, err)
	return ref
}
