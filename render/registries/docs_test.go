package registries

import (
	"os"
	"testing"

	"github.com/BurntSushi/toml"
	operatorv1alpha1 "github.com/openshift/api/operator/v1alpha1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"sigs.k8s.io/yaml"

	"github.com/imagemode/imagemode/examples"
)

// TestDocsImageContentSourcePolicy is the acceptance test: the OpenShift docs' ImageContentSourcePolicy example
// must render to the registries.conf the docs show on a node, entry for entry.
func TestDocsImageContentSourcePolicy(t *testing.T) {
	t.Parallel()
	raw, err := examples.Doc(examples.ImageContentSourcePolicyUBI8Repo)
	require.NoError(t, err)
	var icsp operatorv1alpha1.ImageContentSourcePolicy
	require.NoError(t, yaml.UnmarshalStrict(raw, &icsp))
	require.Equal(t, "ubi8repo", icsp.Name)
	require.Len(t, icsp.Spec.RepositoryDigestMirrors, 6)

	out, err := Generate([]byte(DefaultRegistriesConf), Inputs{ICSPs: []operatorv1alpha1.ImageContentSourcePolicy{icsp}})
	require.NoError(t, err)
	var got sysregistriesv2.V2RegistriesConf
	_, err = toml.Decode(string(out), &got)
	require.NoError(t, err)

	wantRaw, err := os.ReadFile("testdata/docs-ubi8repo-registries.conf")
	require.NoError(t, err)
	var want sysregistriesv2.V2RegistriesConf
	_, err = toml.Decode(string(wantRaw), &want)
	require.NoError(t, err)
	require.Len(t, want.Registries, 6, "the docs' registries.conf should have parsed into six entries")

	assert.Equal(t, want.UnqualifiedSearchRegistries, got.UnqualifiedSearchRegistries)
	require.Len(t, got.Registries, len(want.Registries), "generated:\n%s", out)
	for i, w := range want.Registries {
		g := got.Registries[i]
		assert.Equal(t, w.Prefix, g.Prefix, "registry %d prefix", i)
		assert.Equal(t, w.Location, g.Location, "registry %d location", i)
		assert.Equal(t, w.Blocked, g.Blocked, "registry %d blocked", i)
		assert.Equal(t, w.Insecure, g.Insecure, "registry %d insecure", i)
		require.Len(t, g.Mirrors, len(w.Mirrors), "registry %d (%s) mirrors", i, w.Location)
		for j, wm := range w.Mirrors {
			assert.Equal(t, wm.Location, g.Mirrors[j].Location, "registry %d (%s) mirror %d", i, w.Location, j)
		}
		// The docs show the older registry-level `mirror-by-digest-only = true`; the MCO now writes
		// `pull-from-mirror = "digest-only"` on each mirror instead, and so do we. Both make every mirror of
		// the entry serve digest references only, so they are treated as equivalent here.
		assert.Equal(t, w.MirrorByDigestOnly, allDigestOnly(g), "registry %d (%s) digest-only mirroring", i, w.Location)
		assert.False(t, g.MirrorByDigestOnly, "registry %d: we write pull-from-mirror, not mirror-by-digest-only", i)
	}
}

// allDigestOnly reports whether reg has mirrors and all of them are pull-from-mirror = "digest-only".
func allDigestOnly(reg sysregistriesv2.Registry) bool {
	if len(reg.Mirrors) == 0 {
		return false
	}
	for _, m := range reg.Mirrors {
		if m.PullFromMirror != sysregistriesv2.MirrorByDigestOnly {
			return false
		}
	}
	return true
}
