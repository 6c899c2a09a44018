package registries

import (
	"testing"

	configv1 "github.com/openshift/api/config/v1"
	operatorv1alpha1 "github.com/openshift/api/operator/v1alpha1"
	"github.com/stretchr/testify/assert"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	const never = configv1.NeverContactSource
	const payloadRepo = "quay.io/openshift-release-dev/ocp-release"
	tests := []struct {
		name string
		in   Inputs
		want []string // the errors' messages, in order
	}{
		{
			name: "nothing configured",
			in:   Inputs{ReleaseImage: releaseImage},
		},
		{
			name: "a valid configuration",
			in: Inputs{
				ICSPs: []operatorv1alpha1.ImageContentSourcePolicy{icsp("p", rdm("registry.redhat.io", "mirror.example.com"))},
				IDMSs: []configv1.ImageDigestMirrorSet{idms("d", idm("quay.io/ns", never, "mirror.example.com:5000/ns"))},
				ITMSs: []configv1.ImageTagMirrorSet{itms("t", itm("quay.io/ns", never, "tags.example.com/ns"))},
				Image: image(configv1.RegistrySources{
					InsecureRegistries:               []string{"*.insecure.example", "insecure.example:5000/ns"},
					BlockedRegistries:                []string{"docker.io"},
					ContainerRuntimeSearchRegistries: []string{"registry.access.redhat.com", "local.example:5000"},
				}),
				ReleaseImage: releaseImage,
			},
		},
		{
			name: "invalid registry scopes",
			in: Inputs{Image: image(configv1.RegistrySources{
				InsecureRegistries: []string{"ok.example", "insecure.example/ns:tag"},
				BlockedRegistries:  []string{"*.example.com/foo"},
				AllowedRegistries:  []string{"", "allowed.example/repo@sha256:abc", "Bad_Host"},
			})},
			want: []string{
				`images/cluster: spec.registrySources.insecureRegistries[1]: Invalid value: "insecure.example/ns:tag": must not include a tag`,
				`images/cluster: spec.registrySources.blockedRegistries[0]: Invalid value: "*.example.com/foo": a wildcard scope must have the form *.domain`,
				`images/cluster: spec.registrySources.allowedRegistries[0]: Required value: a registry scope is required`,
				`images/cluster: spec.registrySources.allowedRegistries[1]: Invalid value: "allowed.example/repo@sha256:abc": must not include a digest`,
				`images/cluster: spec.registrySources.allowedRegistries[2]: Invalid value: "Bad_Host": must have the form host[:port][/namespace...][/repository] or *.domain`,
				`images/cluster: spec.registrySources.allowedRegistries: Forbidden: only one of blockedRegistries or allowedRegistries may be set`,
			},
		},
		{
			name: "invalid search registry",
			in: Inputs{Image: image(configv1.RegistrySources{
				ContainerRuntimeSearchRegistries: []string{"quay.io/ns"},
			})},
			want: []string{
				`images/cluster: spec.registrySources.containerRuntimeSearchRegistries[0]: Invalid value: "quay.io/ns": must be a registry host name with an optional port`,
			},
		},
		{
			name: "invalid sources and mirrors name the object and field",
			in: Inputs{
				ICSPs: []operatorv1alpha1.ImageContentSourcePolicy{icsp("policy", rdm("registry.example", "mirror.example/Repo"))},
				IDMSs: []configv1.ImageDigestMirrorSet{idms("foo",
					idm("ok.example", "", "m.example"),
					idm("also-ok.example", "", "m.example"),
					idm("*.example.com", "", "mirror.example", "mirror.example/repo@sha256:abc"),
				)},
				ITMSs: []configv1.ImageTagMirrorSet{itms("tags", itm("", "", "*.mirror.example"), itm("src.example/repo:v1", "", "m.example"))},
			},
			want: []string{
				`imagecontentsourcepolicies/policy: spec.repositoryDigestMirrors[0].mirrors[0]: Invalid value: "mirror.example/Repo": must have the form host[:port][/namespace...][/repository]`,
				`imagedigestmirrorsets/foo: spec.imageDigestMirrors[2].source: Invalid value: "*.example.com": wildcards are only supported in insecureRegistries, blockedRegistries and allowedRegistries`,
				`imagedigestmirrorsets/foo: spec.imageDigestMirrors[2].mirrors[1]: Invalid value: "mirror.example/repo@sha256:abc": must not include a digest`,
				`imagetagmirrorsets/tags: spec.imageTagMirrors[0].source: Required value: a source repository is required`,
				`imagetagmirrorsets/tags: spec.imageTagMirrors[0].mirrors[0]: Invalid value: "*.mirror.example": wildcards are only supported in insecureRegistries, blockedRegistries and allowedRegistries`,
				`imagetagmirrorsets/tags: spec.imageTagMirrors[1].source: Invalid value: "src.example/repo:v1": must not include a tag`,
			},
		},
		{
			name: "empty mirror",
			in:   Inputs{IDMSs: []configv1.ImageDigestMirrorSet{idms("foo", idm("src.example", "", "m.example", ""))}},
			want: []string{`imagedigestmirrorsets/foo: spec.imageDigestMirrors[0].mirrors[1]: Required value: a mirror repository is required`},
		},
		{
			name: "NeverContactSource with the source among the mirrors",
			in: Inputs{IDMSs: []configv1.ImageDigestMirrorSet{
				idms("foo", idm("registry-a.example/ns-a", never, "mirror-a.example/ns-a", "registry-a.example/ns-a")),
			}},
			want: []string{
				`imagedigestmirrorsets/foo: spec.imageDigestMirrors[0].mirrors[1]: Invalid value: "registry-a.example/ns-a": the source cannot be one of the mirrors when mirrorSourcePolicy is NeverContactSource`,
			},
		},
		{
			name: "unknown mirrorSourcePolicy",
			in:   Inputs{ITMSs: []configv1.ImageTagMirrorSet{itms("t", itm("src.example", "Sometimes", "m.example"))}},
			want: []string{
				`imagetagmirrorsets/t: spec.imageTagMirrors[0].mirrorSourcePolicy: Unsupported value: "Sometimes": supported values: "NeverContactSource", "AllowContactingSource"`,
			},
		},
		{
			name: "conflicting policies for one source across IDMSs and ITMSs",
			in: Inputs{
				IDMSs: []configv1.ImageDigestMirrorSet{idms("b-digest", idm("src.example", never, "m1.example"))},
				ITMSs: []configv1.ImageTagMirrorSet{itms("a-tags", itm("src.example", configv1.AllowContactingSource, "m2.example"))},
			},
			want: []string{
				`imagetagmirrorsets/a-tags: spec.imageTagMirrors[0].mirrorSourcePolicy: Invalid value: "AllowContactingSource": mirrorSourcePolicy AllowContactingSource conflicts with NeverContactSource set for the same source "src.example" by imagedigestmirrorsets/b-digest`,
			},
		},
		{
			name: "an ICSP implies AllowContactingSource",
			in: Inputs{
				IDMSs: []configv1.ImageDigestMirrorSet{idms("d", idm("src.example", never, "m1.example"))},
				ICSPs: []operatorv1alpha1.ImageContentSourcePolicy{icsp("p", rdm("src.example", "m2.example"))},
			},
			want: []string{
				`imagedigestmirrorsets/d: spec.imageDigestMirrors[0].mirrorSourcePolicy: Invalid value: "NeverContactSource": mirrorSourcePolicy NeverContactSource conflicts with AllowContactingSource set for the same source "src.example" by imagecontentsourcepolicies/p`,
			},
		},
		{
			name: "an unset policy is AllowContactingSource",
			in: Inputs{IDMSs: []configv1.ImageDigestMirrorSet{
				idms("d1", idm("src.example", "", "m1.example")),
				idms("d2", idm("src.example", configv1.AllowContactingSource, "m2.example")),
			}},
		},
		{
			name: "blocking the payload repository without a mirror",
			in: Inputs{
				Image:        image(configv1.RegistrySources{BlockedRegistries: []string{"docker.io", "quay.io"}}),
				ReleaseImage: releaseImage,
			},
			want: []string{
				`images/cluster: spec.registrySources.blockedRegistries[1]: Invalid value: "quay.io": cannot block the repository the release payload is pulled from (` + payloadRepo + `): it has no digest mirror that is not blocked`,
			},
		},
		{
			name: "blocking the payload repository whose mirrors are blocked too",
			in: Inputs{
				IDMSs: []configv1.ImageDigestMirrorSet{idms("d", idm("quay.io/openshift-release-dev", "", "mirror.example/ocp"))},
				Image: image(configv1.RegistrySources{BlockedRegistries: []string{
					"quay.io/openshift-release-dev/ocp-release", "*.example", "mirror.example",
				}}),
				ReleaseImage: releaseImage,
			},
			want: []string{
				`images/cluster: spec.registrySources.blockedRegistries[0]: Invalid value: "` + payloadRepo + `": cannot block the repository the release payload is pulled from (` + payloadRepo + `): it has no digest mirror that is not blocked`,
			},
		},
		{
			name: "blocking the payload repository with only a tag mirror",
			in: Inputs{
				ITMSs:        []configv1.ImageTagMirrorSet{itms("t", itm("quay.io", "", "mirror.example/quay"))},
				Image:        image(configv1.RegistrySources{BlockedRegistries: []string{"quay.io/openshift-release-dev"}}),
				ReleaseImage: releaseImage,
			},
			want: []string{
				`images/cluster: spec.registrySources.blockedRegistries[0]: Invalid value: "quay.io/openshift-release-dev": cannot block the repository the release payload is pulled from (` + payloadRepo + `): it has no digest mirror that is not blocked`,
			},
		},
		{
			name: "blocking the payload repository with an unblocked digest mirror",
			in: Inputs{
				ICSPs:        []operatorv1alpha1.ImageContentSourcePolicy{icsp("p", rdm("quay.io", "blocked.example/quay"))},
				IDMSs:        []configv1.ImageDigestMirrorSet{idms("d", idm("quay.io/openshift-release-dev", never, "mirror.example/ocp"))},
				Image:        image(configv1.RegistrySources{BlockedRegistries: []string{"quay.io", "blocked.example"}}),
				ReleaseImage: releaseImage,
			},
		},
		{
			name: "a payload pulled by tag does not use digest mirrors",
			in: Inputs{
				IDMSs:        []configv1.ImageDigestMirrorSet{idms("d", idm("quay.io", "", "mirror.example/quay"))},
				Image:        image(configv1.RegistrySources{BlockedRegistries: []string{"quay.io"}}),
				ReleaseImage: payloadRepo + ":4.19.0-x86_64",
			},
			want: []string{
				`images/cluster: spec.registrySources.blockedRegistries[0]: Invalid value: "quay.io": cannot block the repository the release payload is pulled from (` + payloadRepo + `): it has no digest mirror that is not blocked`,
			},
		},
		{
			name: "the innermost mirrored source decides",
			in: Inputs{
				// quay.io's mirror is not blocked, but the payload matches the more specific source, whose only
				// mirror is blocked.
				IDMSs: []configv1.ImageDigestMirrorSet{idms("d",
					idm("quay.io", "", "free.example/quay"),
					idm("quay.io/openshift-release-dev", "", "blocked.example/ocp"),
				)},
				Image:        image(configv1.RegistrySources{BlockedRegistries: []string{"quay.io", "blocked.example"}}),
				ReleaseImage: releaseImage,
			},
			want: []string{
				`images/cluster: spec.registrySources.blockedRegistries[0]: Invalid value: "quay.io": cannot block the repository the release payload is pulled from (` + payloadRepo + `): it has no digest mirror that is not blocked`,
			},
		},
		{
			name: "an unparsable release image",
			in: Inputs{
				Image:        image(configv1.RegistrySources{BlockedRegistries: []string{"quay.io"}}),
				ReleaseImage: "quay.io/UPPER:case:bad",
			},
			want: []string{
				`releaseImage: Invalid value: "quay.io/UPPER:case:bad": parsing the release payload pull spec: invalid reference format: repository name must be lowercase`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, err := range Validate(tc.in) {
				got = append(got, err.Error())
			}
			assert.Equal(t, tc.want, got)
		})
	}
}
