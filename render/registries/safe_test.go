package registries

import (
	"testing"

	configv1 "github.com/openshift/api/config/v1"
	operatorv1alpha1 "github.com/openshift/api/operator/v1alpha1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIsSafeChange(t *testing.T) {
	t.Parallel()
	// base has one mirrored registry and one plain entry.
	const base = `unqualified-search-registries = ["registry.access.redhat.com", "docker.io"]

[[registry]]
  location = "registry.redhat.io"

  [[registry.mirror]]
    location = "mirror.example.com"
    pull-from-mirror = "digest-only"

  [[registry.mirror]]
    location = "tags.example.com"
    pull-from-mirror = "tag-only"

[[registry]]
  prefix = "*.plain.example"
`
	const registries = `
[[registry]]
  prefix = "*.plain.example"
`
	tests := []struct {
		name       string
		old, new   string
		wantSafe   bool
		wantReason string
	}{
		{
			name:     "unchanged",
			old:      base,
			new:      base,
			wantSafe: true,
		},
		{
			name: "a digest-only mirror added to an existing registry",
			old:  base,
			new: `unqualified-search-registries = ["registry.access.redhat.com", "docker.io"]

[[registry]]
  location = "registry.redhat.io"

  [[registry.mirror]]
    location = "mirror.example.com"
    pull-from-mirror = "digest-only"

  [[registry.mirror]]
    location = "tags.example.com"
    pull-from-mirror = "tag-only"

  [[registry.mirror]]
    location = "second.example.com"
    pull-from-mirror = "digest-only"
` + registries,
			wantSafe: true,
		},
		{
			name: "a mirror without pull-from-mirror added to a mirror-by-digest-only registry",
			old: `[[registry]]
  location = "r.example"
  mirror-by-digest-only = true
  [[registry.mirror]]
    location = "m1.example"
`,
			new: `[[registry]]
  location = "r.example"
  mirror-by-digest-only = true
  [[registry.mirror]]
    location = "m1.example"
  [[registry.mirror]]
    location = "m2.example"
`,
			wantSafe: true,
		},
		{
			name: "a registry added with digest-only mirrors",
			old:  base,
			new: base + `
[[registry]]
  location = "quay.io/ns"
  [[registry.mirror]]
    location = "m1.example/ns"
    pull-from-mirror = "digest-only"
  [[registry.mirror]]
    location = "m2.example/ns"
    pull-from-mirror = "digest-only"
`,
			wantSafe: true,
		},
		{
			name:     "search registries appended",
			old:      `unqualified-search-registries = ["registry.access.redhat.com"]`,
			new:      `unqualified-search-registries = ["registry.access.redhat.com", "quay.io"]`,
			wantSafe: true,
		},
		{
			name: "an existing mirror switched to digest-only, and mirrors reordered",
			old: `[[registry]]
  location = "r.example"
  [[registry.mirror]]
    location = "m1.example"
    pull-from-mirror = "tag-only"
  [[registry.mirror]]
    location = "m2.example"
    pull-from-mirror = "digest-only"
`,
			new: `[[registry]]
  location = "r.example"
  [[registry.mirror]]
    location = "m2.example"
    pull-from-mirror = "digest-only"
  [[registry.mirror]]
    location = "m1.example"
    pull-from-mirror = "digest-only"
`,
			wantSafe: true,
		},
		{
			name:       "search registries shrank",
			old:        `unqualified-search-registries = ["registry.access.redhat.com", "docker.io"]`,
			new:        `unqualified-search-registries = ["registry.access.redhat.com"]`,
			wantReason: "unqualified-search-registries shrank from 2 to 1 entries",
		},
		{
			name:       "search registries reordered",
			old:        `unqualified-search-registries = ["registry.access.redhat.com", "docker.io"]`,
			new:        `unqualified-search-registries = ["docker.io", "registry.access.redhat.com"]`,
			wantReason: `unqualified-search-registries entry 0 changed from "registry.access.redhat.com" to "docker.io"`,
		},
		{
			name:       "a registry removed",
			old:        base,
			new:        `unqualified-search-registries = ["registry.access.redhat.com", "docker.io"]` + registries,
			wantReason: `registry "registry.redhat.io" removed`,
		},
		{
			name:       "prefix changed",
			old:        `[[registry]]` + "\n" + `location = "r.example"`,
			new:        `[[registry]]` + "\n" + `prefix = "r.example"` + "\n" + `location = "r.example"`,
			wantReason: `prefix of registry "r.example" changed from "" to "r.example"`,
		},
		{
			name:       "location changed",
			old:        `[[registry]]` + "\n" + `prefix = "r.example"` + "\n" + `location = "a.example"`,
			new:        `[[registry]]` + "\n" + `prefix = "r.example"` + "\n" + `location = "b.example"`,
			wantReason: `location of registry "r.example" changed from "a.example" to "b.example"`,
		},
		{
			name:       "blocked changed",
			old:        registries,
			new:        registries + "  blocked = true\n",
			wantReason: `blocked of registry "*.plain.example" changed from false to true`,
		},
		{
			name:       "insecure changed",
			old:        registries + "  insecure = true\n",
			new:        registries,
			wantReason: `insecure of registry "*.plain.example" changed from true to false`,
		},
		{
			name: "a mirror removed",
			old:  base,
			new: `unqualified-search-registries = ["registry.access.redhat.com", "docker.io"]
[[registry]]
  location = "registry.redhat.io"
  [[registry.mirror]]
    location = "tags.example.com"
    pull-from-mirror = "tag-only"
` + registries,
			wantReason: `mirror "mirror.example.com" removed from registry "registry.redhat.io"`,
		},
		{
			name: "an existing mirror switched from digest-only to tag-only",
			old: `[[registry]]
  location = "r.example"
  [[registry.mirror]]
    location = "m.example"
    pull-from-mirror = "digest-only"
`,
			new: `[[registry]]
  location = "r.example"
  [[registry.mirror]]
    location = "m.example"
    pull-from-mirror = "tag-only"
`,
			wantReason: `pull-from-mirror of mirror "m.example" in registry "r.example" changed from "digest-only" to "tag-only"`,
		},
		{
			name: "an existing mirror lost pull-from-mirror",
			old: `[[registry]]
  location = "r.example"
  [[registry.mirror]]
    location = "m.example"
    pull-from-mirror = "digest-only"
`,
			new: `[[registry]]
  location = "r.example"
  [[registry.mirror]]
    location = "m.example"
`,
			wantReason: `pull-from-mirror of mirror "m.example" in registry "r.example" changed from "digest-only" to ""`,
		},
		{
			name: "a tag-only mirror added to an existing registry",
			old:  `[[registry]]` + "\n" + `location = "r.example"`,
			new: `[[registry]]
  location = "r.example"
  [[registry.mirror]]
    location = "m.example"
    pull-from-mirror = "tag-only"
`,
			wantReason: `mirror "m.example" added to registry "r.example" without pull-from-mirror = "digest-only"`,
		},
		{
			name: "a registry added with a mirror that is not digest-only",
			old:  base,
			new: base + `
[[registry]]
  location = "quay.io/ns"
  [[registry.mirror]]
    location = "m1.example/ns"
    pull-from-mirror = "digest-only"
  [[registry.mirror]]
    location = "m2.example/ns"
`,
			wantReason: `registry "quay.io/ns" added with mirrors that are not all pull-from-mirror = "digest-only"`,
		},
		{
			name:       "a blocked registry added",
			old:        base,
			new:        base + "\n[[registry]]\n  location = \"blocked.example\"\n  blocked = true\n",
			wantReason: `registry "blocked.example" added without mirror-by-digest-only`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			safe, reason, err := IsSafeChange([]byte(tc.old), []byte(tc.new))
			require.NoError(t, err)
			assert.Equal(t, tc.wantSafe, safe)
			assert.Equal(t, tc.wantReason, reason)
		})
	}
}

func TestIsSafeChangeErrors(t *testing.T) {
	t.Parallel()
	_, _, err := IsSafeChange([]byte("[[registry]\n"), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "parsing old registries.conf: ")
	_, _, err = IsSafeChange(nil, []byte("unqualified-search-registries = 1"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "parsing new registries.conf: ")
}

// TestIsSafeChangeOfGeneratedConfigs runs IsSafeChange on Generate's output, as the daemon does across a
// rendered-config update.
func TestIsSafeChangeOfGeneratedConfigs(t *testing.T) {
	t.Parallel()
	docs := Inputs{ICSPs: []operatorv1alpha1.ImageContentSourcePolicy{icsp("ubi8repo",
		rdm("registry.access.redhat.com/ubi8/ubi-minimal", "example.io/example/ubi-minimal", "example.com/example/ubi-minimal"),
		rdm("registry.redhat.io", "mirror.example.com"),
	)}}
	withTags := docs
	withTags.ITMSs = []configv1.ImageTagMirrorSet{itms("t", itm("registry.redhat.io", "", "tags.example.com"))}
	withBlocked := docs
	withBlocked.Image = image(configv1.RegistrySources{BlockedRegistries: []string{"docker.io"}})
	tests := []struct {
		name       string
		old, new   Inputs
		wantSafe   bool
		wantReason string
	}{
		{name: "adding an ICSP", old: Inputs{}, new: docs, wantSafe: true},
		{
			name:       "removing an ICSP",
			old:        docs,
			new:        Inputs{},
			wantReason: `registry "registry.access.redhat.com/ubi8/ubi-minimal" removed`,
		},
		{
			name:       "adding an ITMS",
			old:        docs,
			new:        withTags,
			wantReason: `mirror "tags.example.com" added to registry "registry.redhat.io" without pull-from-mirror = "digest-only"`,
		},
		{
			name:       "blocking a registry",
			old:        docs,
			new:        withBlocked,
			wantReason: `registry "docker.io" added without mirror-by-digest-only`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			oldConf, err := Generate([]byte(DefaultRegistriesConf), tc.old)
			require.NoError(t, err)
			newConf, err := Generate([]byte(DefaultRegistriesConf), tc.new)
			require.NoError(t, err)
			safe, reason, err := IsSafeChange(oldConf, newConf)
			require.NoError(t, err)
			assert.Equal(t, tc.wantSafe, safe)
			assert.Equal(t, tc.wantReason, reason)
		})
	}
}
