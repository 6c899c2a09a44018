package registries

import (
	"testing"

	configv1 "github.com/openshift/api/config/v1"
	operatorv1alpha1 "github.com/openshift/api/operator/v1alpha1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
)

func TestPolicy(t *testing.T) {
	t.Parallel()
	const accept = `[{"type":"insecureAcceptAnything"}]`
	const reject = `[{"type":"reject"}]`
	const daemon = `"docker-daemon": {"": ` + accept + `}`
	const customBase = `{"default": [{"type": "insecureAcceptAnything"}], "transports": {"docker": {"keep.example": [{"type": "reject"}]}}}`
	tests := []struct {
		name string
		base string
		in   Inputs
		want string // JSON; compared semantically
	}{
		{
			name: "nothing configured gives the default policy",
			want: DefaultPolicyJSON,
		},
		{
			name: "nothing configured keeps the base",
			base: customBase,
			in:   Inputs{Image: image(configv1.RegistrySources{InsecureRegistries: []string{"insecure.example"}})},
			want: customBase,
		},
		{
			name: "allowed registries reject everything else",
			in: Inputs{Image: image(configv1.RegistrySources{
				AllowedRegistries: []string{"quay.io", "*.allowed.example", "registry.example/a/b/c"},
			})},
			want: `{"default": ` + reject + `, "transports": {
				"docker": {"quay.io": ` + accept + `, "*.allowed.example": ` + accept + `, "registry.example/a/b/c": ` + accept + `},
				"atomic": {"quay.io": ` + accept + `, "*.allowed.example": ` + accept + `},
				` + daemon + `}}`,
		},
		{
			name: "allowed registries keep docker-daemon open even when the base has no transports",
			base: `{"default": [{"type": "insecureAcceptAnything"}]}`,
			in:   Inputs{Image: image(configv1.RegistrySources{AllowedRegistries: []string{"quay.io"}})},
			want: `{"default": ` + reject + `, "transports": {
				"docker": {"quay.io": ` + accept + `}, "atomic": {"quay.io": ` + accept + `}, ` + daemon + `}}`,
		},
		{
			name: "blocked registries are rejected",
			in: Inputs{Image: image(configv1.RegistrySources{
				BlockedRegistries: []string{"docker.io", "*.blocked.example"},
			})},
			want: `{"default": ` + accept + `, "transports": {
				"docker": {"docker.io": ` + reject + `, "*.blocked.example": ` + reject + `},
				"atomic": {"docker.io": ` + reject + `, "*.blocked.example": ` + reject + `},
				` + daemon + `}}`,
		},
		{
			name: "blocked registries are merged into the base's scopes",
			base: customBase,
			in:   Inputs{Image: image(configv1.RegistrySources{BlockedRegistries: []string{"docker.io"}})},
			want: `{"default": ` + accept + `, "transports": {
				"docker": {"keep.example": ` + reject + `, "docker.io": ` + reject + `},
				"atomic": {"docker.io": ` + reject + `}}}`,
		},
		{
			name: "a blocked payload registry with a digest mirror stays allowed for the payload repository",
			in: Inputs{
				IDMSs:        []configv1.ImageDigestMirrorSet{idms("d", idm("quay.io/openshift-release-dev", "", "mirror.example/ocp"))},
				Image:        image(configv1.RegistrySources{BlockedRegistries: []string{"quay.io"}}),
				ReleaseImage: releaseImage,
			},
			want: `{"default": ` + accept + `, "transports": {
				"docker": {"quay.io": ` + reject + `, "quay.io/openshift-release-dev/ocp-release": ` + accept + `},
				"atomic": {"quay.io": ` + reject + `, "quay.io/openshift-release-dev/ocp-release": ` + accept + `},
				` + daemon + `}}`,
		},
		{
			name: "blocking exactly the mirrored payload repository rejects nothing",
			in: Inputs{
				ICSPs:        []operatorv1alpha1.ImageContentSourcePolicy{icsp("p", rdm("quay.io", "mirror.example/quay"))},
				Image:        image(configv1.RegistrySources{BlockedRegistries: []string{"quay.io/openshift-release-dev/ocp-release"}}),
				ReleaseImage: releaseImage,
			},
			want: `{"default": ` + accept + `, "transports": {
				"docker": {"quay.io/openshift-release-dev/ocp-release": ` + accept + `},
				"atomic": {"quay.io/openshift-release-dev/ocp-release": ` + accept + `},
				` + daemon + `}}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Policy([]byte(tc.base), tc.in)
			require.NoError(t, err)
			assert.JSONEq(t, tc.want, string(got))
		})
	}
}

// TestPolicyBlockedPayloadRegistriesConf checks the other half of the payload exemption: the payload registry
// is still blocked in registries.conf, where its mirrors serve it.
func TestPolicyBlockedPayloadRegistriesConf(t *testing.T) {
	t.Parallel()
	in := Inputs{
		IDMSs:        []configv1.ImageDigestMirrorSet{idms("d", idm("quay.io/openshift-release-dev", "", "mirror.example/ocp"))},
		Image:        image(configv1.RegistrySources{BlockedRegistries: []string{"quay.io"}}),
		ReleaseImage: releaseImage,
	}
	got := generate(t, "", in)
	assert.Equal(t, []sysregistriesv2.Registry{
		blockedReg(at("quay.io/openshift-release-dev", digestOnly("mirror.example/ocp"))),
		blockedReg(at("quay.io")),
	}, got.Registries)
}

func TestPolicyErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		base    string
		in      Inputs
		wantErr string
	}{
		{
			name:    "allowed and blocked together",
			in:      Inputs{Image: image(configv1.RegistrySources{AllowedRegistries: []string{"a.example"}, BlockedRegistries: []string{"b.example"}})},
			wantErr: "validating registry configuration: images/cluster: spec.registrySources.allowedRegistries: Forbidden",
		},
		{
			name:    "blocked payload without a mirror",
			in:      Inputs{Image: image(configv1.RegistrySources{BlockedRegistries: []string{"quay.io"}}), ReleaseImage: releaseImage},
			wantErr: "images/cluster: spec.registrySources.blockedRegistries[0]: Invalid value: \"quay.io\": cannot block",
		},
		{
			name:    "malformed base",
			base:    `{"default": [`,
			in:      Inputs{Image: image(configv1.RegistrySources{BlockedRegistries: []string{"b.example"}})},
			wantErr: "parsing base policy.json: ",
		},
		{
			name:    "base without a default",
			base:    `{"transports": {}}`,
			in:      Inputs{Image: image(configv1.RegistrySources{BlockedRegistries: []string{"b.example"}})},
			wantErr: "parsing base policy.json: ",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Policy([]byte(tc.base), tc.in)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
		})
	}
}
