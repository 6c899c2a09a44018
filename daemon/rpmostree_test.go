package daemon

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseStatus(t *testing.T) {
	t.Parallel()
	type deployment struct {
		image, digest, checksum, version string
	}
	tests := []struct {
		name            string
		fixture         string
		raw             string
		wantCount       int
		wantBooted      deployment
		wantStaged      *deployment
		wantRemovals    []string
		wantOrigin      string
		wantErr         error
		wantErrContains string
	}{
		{
			name: "layered node with a new image staged", fixture: "rpm-ostree-status-staged.json", wantCount: 2,
			wantBooted: deployment{
				image:    "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:0e7c4b1a9f8d2c3b4a5e6f7081928374655647382910abcdefabcdefabcdef12",
				digest:   "sha256:0e7c4b1a9f8d2c3b4a5e6f7081928374655647382910abcdefabcdefabcdef12",
				checksum: "3c9e1a7b5d2f4e6c8a0b9d1f3e5a7c9b2d4f6e8a0c1b3d5f7e9a2c4b6d8f0e1a",
				version:  "9.6.20250701-1",
			},
			wantStaged: &deployment{
				image:    "image-registry.openshift-image-registry.svc:5000/openshift-machine-config-operator/ocb-image@sha256:5d2b0e9b7c4a1f3e8d6c9a0b1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f",
				digest:   "sha256:5d2b0e9b7c4a1f3e8d6c9a0b1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f",
				checksum: "8a7f5d1f2b4c3e6a9d0b1c2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a",
				version:  "9.6.20250804-0",
			},
		},
		{
			name: "legacy pivot origin, no image", fixture: "rpm-ostree-status-legacy-origin.json", wantCount: 2,
			wantBooted: deployment{
				checksum: "1f2e3d4c5b6a79880796a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4",
				version:  "412.86.202306132230-0",
			},
			wantRemovals: []string{"kernel", "kernel-core", "kernel-modules", "kernel-modules-extra"},
			wantOrigin:   "pivot://quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:ab01cd23ef45ab01cd23ef45ab01cd23ef45ab01cd23ef45ab01cd23ef45ab01",
		},
		{
			name: "image from containers-storage during a transaction", fixture: "rpm-ostree-status-containers-storage.json", wantCount: 1,
			wantBooted: deployment{
				image:    "quay.io/example/os@sha256:feedfacecafebeefdeadbeef00112233445566778899aabbccddeeff00112233",
				digest:   "sha256:feedfacecafebeefdeadbeef00112233445566778899aabbccddeeff00112233",
				checksum: "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c",
				version:  "42.20250727.3.0",
			},
		},
		{name: "no booted deployment", raw: `{"deployments":[{"id":"a","booted":false}]}`, wantErr: ErrNoBootedDeployment},
		{name: "no deployments", raw: `{"deployments":[]}`, wantErr: ErrNoBootedDeployment},
		{name: "not JSON", raw: `Deployments:`, wantErrContains: "parsing rpm-ostree status"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := []byte(tc.raw)
			if tc.fixture != "" {
				var err error
				data, err = os.ReadFile(filepath.Join("testdata", tc.fixture))
				require.NoError(t, err)
			}
			st, err := ParseStatus(data)
			if tc.wantErr != nil || tc.wantErrContains != "" {
				require.Error(t, err)
				if tc.wantErr != nil {
					assert.ErrorIs(t, err, tc.wantErr)
				}
				assert.Contains(t, err.Error(), tc.wantErrContains)
				return
			}
			require.NoError(t, err)
			assert.Len(t, st.Deployments, tc.wantCount)
			got := func(d *Deployment) deployment {
				return deployment{image: d.Image(), digest: d.ImageDigest(), checksum: d.Checksum, version: d.Version}
			}
			assert.Equal(t, tc.wantBooted, got(st.Booted))
			assert.True(t, st.Booted.Booted)
			assert.Equal(t, tc.wantBooted.image, st.BootedImage())
			assert.Equal(t, tc.wantBooted.digest, st.BootedImageDigest())
			assert.Equal(t, tc.wantRemovals, nilIfEmpty(st.Booted.RequestedBaseRemovals))
			assert.Equal(t, tc.wantOrigin, st.Booted.Origin)
			if tc.wantStaged == nil {
				assert.Nil(t, st.Staged)
				return
			}
			require.NotNil(t, st.Staged)
			assert.Equal(t, *tc.wantStaged, got(st.Staged))
		})
	}
}

func TestParseImageReference(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    ImageReference
		wantErr bool
	}{
		{name: "unverified registry", in: "ostree-unverified-registry:quay.io/x/os@sha256:abc", want: ImageReference{"ostree-unverified", "registry", "quay.io/x/os@sha256:abc"}},
		{name: "registry with port and tag", in: "ostree-unverified-registry:reg:5000/x/os:latest", want: ImageReference{"ostree-unverified", "registry", "reg:5000/x/os:latest"}},
		{name: "unverified image, docker transport", in: "ostree-unverified-image:docker://quay.io/x/os:1", want: ImageReference{"ostree-unverified", "registry", "quay.io/x/os:1"}},
		{name: "unverified image, registry transport", in: "ostree-unverified-image:registry:quay.io/x/os:1", want: ImageReference{"ostree-unverified", "registry", "quay.io/x/os:1"}},
		{name: "containers-storage", in: "ostree-unverified-image:containers-storage:quay.io/x/os@sha256:abc", want: ImageReference{"ostree-unverified", "containers-storage", "quay.io/x/os@sha256:abc"}},
		{name: "signed oci", in: "ostree-image-signed:oci:/var/tmp/os:latest", want: ImageReference{"ostree-image-signed", "oci", "/var/tmp/os:latest"}},
		{name: "remote registry", in: "ostree-remote-registry:fedora:quay.io/fedora/fedora-coreos:stable", want: ImageReference{"ostree-remote:fedora", "registry", "quay.io/fedora/fedora-coreos:stable"}},
		{name: "remote image", in: "ostree-remote-image:fedora:docker://quay.io/fedora/fedora-coreos:stable", want: ImageReference{"ostree-remote:fedora", "registry", "quay.io/fedora/fedora-coreos:stable"}},
		{name: "no kind", in: "quay.io/x/os:1", wantErr: true},
		{name: "unknown kind", in: "pivot://quay.io/x/os", wantErr: true},
		{name: "empty image", in: "ostree-unverified-registry:", wantErr: true},
		{name: "unknown transport", in: "ostree-unverified-image:ftp:x", wantErr: true},
		{name: "remote without image", in: "ostree-remote-registry:fedora", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseImageReference(tc.in)
			if tc.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestDeploymentImageDigestFromPullSpec(t *testing.T) {
	t.Parallel()
	d := &Deployment{ContainerImageReference: "ostree-unverified-registry:quay.io/x@sha256:123"}
	assert.Equal(t, "sha256:123", d.ImageDigest())
	d = &Deployment{ContainerImageReference: "ostree-unverified-registry:quay.io/x:latest"}
	assert.Equal(t, "", d.ImageDigest())
	var nilDep *Deployment
	assert.Equal(t, "", nilDep.Image())
	assert.Equal(t, "", nilDep.ImageDigest())
}
