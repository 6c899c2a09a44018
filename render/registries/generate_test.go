package registries

import (
	"slices"
	"strings"
	"testing"

	configv1 "github.com/openshift/api/config/v1"
	operatorv1alpha1 "github.com/openshift/api/operator/v1alpha1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
)

func TestGenerate(t *testing.T) {
	t.Parallel()
	const never = configv1.NeverContactSource
	tests := []struct {
		name       string
		base       string
		in         Inputs
		want       []sysregistriesv2.Registry
		wantSearch []string
	}{
		{
			name: "no input keeps the base",
			base: DefaultRegistriesConf,
			want: nil,
		},
		{
			name: "mirror sets (B, C) and (A, B) merge to (A, B, C)",
			in: Inputs{IDMSs: []configv1.ImageDigestMirrorSet{
				idms("first", idm("src.example/app", "", "b.example/app", "c.example/app")),
				idms("second", idm("src.example/app", "", "a.example/app", "b.example/app")),
			}},
			want: []sysregistriesv2.Registry{
				at("src.example/app", digestOnly("a.example/app"), digestOnly("b.example/app"), digestOnly("c.example/app")),
			},
		},
		{
			name: "a preference cycle is broken at its smallest repository, keeping the edges out of it",
			in: Inputs{IDMSs: []configv1.ImageDigestMirrorSet{
				idms("one", idm("src.example", "", "y.example", "x.example")),
				idms("two", idm("src.example", "", "x.example", "y.example")),
				idms("three", idm("src.example", "", "x.example", "a.example")),
			}},
			// x and y prefer each other; a must come after x. The cycle is entered at x (the smaller of x and y),
			// then a and y are both free and a is smaller.
			want: []sysregistriesv2.Registry{
				at("src.example", digestOnly("x.example"), digestOnly("a.example"), digestOnly("y.example")),
			},
		},
		{
			name: "unrelated lists of ICSPs and IDMSs for one source merge in lexicographic order",
			in: Inputs{
				ICSPs: []operatorv1alpha1.ImageContentSourcePolicy{icsp("p", rdm("src.example/ns", "mirror.example/o2"))},
				IDMSs: []configv1.ImageDigestMirrorSet{
					idms("s", idm("src.example/ns", "", "mirror.example/o3"), idm("src.example/ns", "", "mirror.example/o1")),
				},
			},
			want: []sysregistriesv2.Registry{
				at("src.example/ns", digestOnly("mirror.example/o1"), digestOnly("mirror.example/o2"), digestOnly("mirror.example/o3")),
			},
		},
		{
			name: "sources come in sorted order, digest mirrors before tag mirrors",
			in: Inputs{
				ITMSs: []configv1.ImageTagMirrorSet{
					itms("t", itm("b.example", "", "tag.example/b"), itm("a.example", "", "tag.example/a")),
				},
				IDMSs: []configv1.ImageDigestMirrorSet{
					idms("d", idm("c.example", "", "digest.example/c"), idm("a.example", "", "digest.example/a")),
				},
			},
			want: []sysregistriesv2.Registry{
				at("a.example", digestOnly("digest.example/a"), tagOnly("tag.example/a")),
				at("c.example", digestOnly("digest.example/c")),
				at("b.example", tagOnly("tag.example/b")),
			},
		},
		{
			name: "NeverContactSource on any set blocks the source",
			in: Inputs{
				IDMSs: []configv1.ImageDigestMirrorSet{
					idms("d", idm("a.example", never, "m1.example"), idm("c.example", "", "m3.example")),
				},
				ITMSs: []configv1.ImageTagMirrorSet{itms("t", itm("b.example", never, "m2.example"))},
			},
			want: []sysregistriesv2.Registry{
				blockedReg(at("a.example", digestOnly("m1.example"))),
				at("c.example", digestOnly("m3.example")),
				blockedReg(at("b.example", tagOnly("m2.example"))),
			},
		},
		{
			name: "sets whose mirrors only repeat the source are ignored",
			in: Inputs{
				IDMSs: []configv1.ImageDigestMirrorSet{idms("d", idm("self.example/ns", "", "self.example/ns", "self.example/ns"))},
				ICSPs: []operatorv1alpha1.ImageContentSourcePolicy{icsp("p", rdm("empty.example"))},
			},
			want: nil,
		},
		{
			name: "a source listed among its own mirrors keeps its place unless it is last",
			in: Inputs{IDMSs: []configv1.ImageDigestMirrorSet{
				idms("d", idm("src.example", "", "z.example", "src.example", "y.example"), idm("src.example", "", "w.example", "src.example")),
			}},
			want: []sysregistriesv2.Registry{
				at("src.example", digestOnly("w.example"), digestOnly("z.example"), digestOnly("src.example"), digestOnly("y.example")),
			},
		},
		{
			name: "insecure scopes mark nested registries and nested mirrors",
			in: Inputs{
				IDMSs: []configv1.ImageDigestMirrorSet{
					idms("d", idm("src.example/team/app", "", "mirror.example/team/app", "other.example/app")),
				},
				Image: image(configv1.RegistrySources{InsecureRegistries: []string{"src.example/team", "mirror.example"}}),
			},
			want: []sysregistriesv2.Registry{
				insecureReg(at("src.example/team/app", insecure(digestOnly("mirror.example/team/app")), digestOnly("other.example/app"))),
				insecureReg(at("src.example/team")),
				insecureReg(at("mirror.example")),
			},
		},
		{
			name: "blocked scopes block nested registries, not mirrors",
			in: Inputs{
				IDMSs: []configv1.ImageDigestMirrorSet{
					idms("d", idm("blocked.example/ns", "", "blocked.example/copy"), idm("free.example", "", "blocked.example/free")),
				},
				Image: image(configv1.RegistrySources{BlockedRegistries: []string{"blocked.example"}}),
			},
			want: []sysregistriesv2.Registry{
				blockedReg(at("blocked.example/ns", digestOnly("blocked.example/copy"))),
				at("free.example", digestOnly("blocked.example/free")),
				blockedReg(at("blocked.example")),
			},
		},
		{
			name: "scopes nested in a mirrored source inherit its mirrors with their path appended",
			in: Inputs{
				IDMSs: []configv1.ImageDigestMirrorSet{idms("d",
					idm("primary.example/top", "", "mirror.example/primary"),
					idm("primary.example/top/insecure/more", "", "mirror.example/more"),
				)},
				ITMSs: []configv1.ImageTagMirrorSet{itms("t",
					itm("primary.example/top", "", "tags.example/primary"),
					itm("primary.example/top/insecure/more", "", "tags.example/more"),
				)},
				Image: image(configv1.RegistrySources{
					InsecureRegistries: []string{"primary.example/top/insecure", "mirror.example/primary/insecure"},
					BlockedRegistries:  []string{"primary.example/top/blocked"},
				}),
			},
			want: []sysregistriesv2.Registry{
				at("primary.example/top", digestOnly("mirror.example/primary"), tagOnly("tags.example/primary")),
				insecureReg(at("primary.example/top/insecure/more", digestOnly("mirror.example/more"), tagOnly("tags.example/more"))),
				blockedReg(at("primary.example/top/blocked", digestOnly("mirror.example/primary/blocked"), tagOnly("tags.example/primary/blocked"))),
				insecureReg(at("primary.example/top/insecure", insecure(digestOnly("mirror.example/primary/insecure")), tagOnly("tags.example/primary/insecure"))),
				insecureReg(at("mirror.example/primary/insecure")),
			},
		},
		{
			name: "a nested scope inherits from the innermost mirrored source, NeverContactSource included",
			in: Inputs{
				IDMSs: []configv1.ImageDigestMirrorSet{idms("d",
					idm("reg.example", "", "outer.example"),
					idm("reg.example/ns", never, "inner.example/ns"),
				)},
				Image: image(configv1.RegistrySources{InsecureRegistries: []string{"reg.example/ns/app"}}),
			},
			want: []sysregistriesv2.Registry{
				at("reg.example", digestOnly("outer.example")),
				blockedReg(at("reg.example/ns", digestOnly("inner.example/ns"))),
				blockedReg(insecureReg(at("reg.example/ns/app", digestOnly("inner.example/ns/app")))),
			},
		},
		{
			name: "wildcard scopes are prefix entries and match subdomains",
			in: Inputs{
				IDMSs: []configv1.ImageDigestMirrorSet{idms("d",
					idm("insecure.example/ns-i1", "", "blocked.example/ns-b1", "other.example/ns-o1"),
					idm("blocked.example/ns-b/ns2-b", "", "other.example/ns-o2", "insecure.example/ns-i2"),
					idm("other.example/ns-o3", "", "insecure.example/ns-i2", "blocked.example/ns-b/ns3-b", "foo.insecure-example.com/bar"),
				)},
				Image: image(configv1.RegistrySources{
					InsecureRegistries: []string{"insecure.example", "*.insecure-example.com", "*.insecure.blocked-example.com"},
					BlockedRegistries:  []string{"blocked.example", "*.blocked.insecure-example.com", "*.blocked-example.com"},
				}),
			},
			want: []sysregistriesv2.Registry{
				blockedReg(at("blocked.example/ns-b/ns2-b", digestOnly("other.example/ns-o2"), insecure(digestOnly("insecure.example/ns-i2")))),
				insecureReg(at("insecure.example/ns-i1", digestOnly("blocked.example/ns-b1"), digestOnly("other.example/ns-o1"))),
				at("other.example/ns-o3", insecure(digestOnly("insecure.example/ns-i2")), digestOnly("blocked.example/ns-b/ns3-b"),
					insecure(digestOnly("foo.insecure-example.com/bar"))),
				blockedReg(at("blocked.example")),
				blockedReg(insecureReg(wildcard("*.blocked.insecure-example.com"))),
				blockedReg(wildcard("*.blocked-example.com")),
				insecureReg(at("insecure.example")),
				insecureReg(wildcard("*.insecure-example.com")),
				blockedReg(insecureReg(wildcard("*.insecure.blocked-example.com"))),
			},
		},
		{
			name: "containerRuntimeSearchRegistries leave unqualified-search-registries alone (they have a drop-in)",
			base: DefaultRegistriesConf,
			in: Inputs{Image: image(configv1.RegistrySources{
				ContainerRuntimeSearchRegistries: []string{"search.example", "quay.io"},
			})},
		},
		{
			name: "entries of the base are kept and edited in place",
			base: `unqualified-search-registries = ["registry.access.redhat.com"]
short-name-mode = "enforcing"

[[registry]]
  location = "kept.example"

[[registry]]
  location = "src.example"
  [[registry.mirror]]
    location = "base-mirror.example"
`,
			in: Inputs{
				IDMSs: []configv1.ImageDigestMirrorSet{idms("d", idm("src.example", "", "new-mirror.example"))},
				Image: image(configv1.RegistrySources{InsecureRegistries: []string{"kept.example"}}),
			},
			want: []sysregistriesv2.Registry{
				insecureReg(at("kept.example")),
				at("src.example", sysregistriesv2.Endpoint{Location: "base-mirror.example"}, digestOnly("new-mirror.example")),
			},
			wantSearch: []string{"registry.access.redhat.com"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := generate(t, tc.base, tc.in)
			assert.Equal(t, tc.want, got.Registries)
			wantSearch := tc.wantSearch
			if wantSearch == nil && tc.base == DefaultRegistriesConf {
				wantSearch = []string{"registry.access.redhat.com", "docker.io"}
			}
			assert.Equal(t, wantSearch, got.UnqualifiedSearchRegistries)
		})
	}
}

func TestGenerateKeepsBaseSettings(t *testing.T) {
	t.Parallel()
	got := generate(t, "short-name-mode = \"enforcing\"\n[aliases]\n  fedora = \"registry.fedoraproject.org/fedora\"\n", Inputs{})
	assert.Equal(t, "enforcing", got.ShortNameMode)
	assert.Equal(t, map[string]string{"fedora": "registry.fedoraproject.org/fedora"}, got.Aliases)
}

func TestGenerateErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		base    string
		in      Inputs
		wantErr string
	}{
		{
			name:    "invalid input is rejected with the validation errors",
			in:      Inputs{IDMSs: []configv1.ImageDigestMirrorSet{idms("bad", idm("*.example.com", "", "mirror.example"))}},
			wantErr: "validating registry configuration: imagedigestmirrorsets/bad: spec.imageDigestMirrors[0].source",
		},
		{
			name:    "malformed base",
			base:    "[[registry]\n",
			wantErr: "parsing base registries.conf: ",
		},
		{
			name:    "keys outside the v2 model",
			base:    "[registries.search]\nregistries = [\"docker.io\"]\n",
			wantErr: "parsing base registries.conf: unsupported keys registries",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Generate([]byte(tc.base), tc.in)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

// TestGenerateDeterministic renders the same configuration given in different object and item orders.
func TestGenerateDeterministic(t *testing.T) {
	t.Parallel()
	icsps := []operatorv1alpha1.ImageContentSourcePolicy{
		icsp("p1", rdm("quay.example/ns", "m1.example/ns", "m2.example/ns"), rdm("reg.example", "local.example/reg")),
		icsp("p2", rdm("quay.example/ns", "m0.example/ns", "m1.example/ns")),
	}
	idmss := []configv1.ImageDigestMirrorSet{
		idms("d1", idm("quay.example/ns", "", "m3.example/ns"), idm("a.example", configv1.NeverContactSource, "b.example")),
		idms("d2", idm("c.example/x", "", "d.example/x", "e.example/x"), idm("c.example/x", "", "e.example/x", "d.example/x")),
	}
	itmss := []configv1.ImageTagMirrorSet{
		itms("t1", itm("quay.example/ns", "", "tags.example/ns")),
		itms("t2", itm("z.example", "", "tags.example/z"), itm("y.example", "", "tags.example/y")),
	}
	img := image(configv1.RegistrySources{
		InsecureRegistries: []string{"m1.example", "*.insecure.example"},
		BlockedRegistries:  []string{"quay.example/ns/blocked"},
	})
	in := Inputs{ICSPs: icsps, IDMSs: idmss, ITMSs: itmss, Image: img}
	want, err := Generate([]byte(DefaultRegistriesConf), in)
	require.NoError(t, err)
	require.Contains(t, string(want), `location = "m0.example/ns"`, "the inputs should have produced mirrors")

	permuted := Inputs{
		ICSPs: reversed(icsps),
		IDMSs: reversed(idmss),
		ITMSs: reversed(itmss),
		Image: img,
	}
	for i := range permuted.ICSPs {
		permuted.ICSPs[i].Spec.RepositoryDigestMirrors = reversed(permuted.ICSPs[i].Spec.RepositoryDigestMirrors)
	}
	for i := range permuted.IDMSs {
		permuted.IDMSs[i].Spec.ImageDigestMirrors = reversed(permuted.IDMSs[i].Spec.ImageDigestMirrors)
	}
	for i := range permuted.ITMSs {
		permuted.ITMSs[i].Spec.ImageTagMirrors = reversed(permuted.ITMSs[i].Spec.ImageTagMirrors)
	}
	got, err := Generate([]byte(DefaultRegistriesConf), permuted)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got))

	again, err := Generate([]byte(DefaultRegistriesConf), in)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(again))
	assert.True(t, strings.Index(string(want), `"a.example"`) < strings.Index(string(want), `"quay.example/ns"`),
		"sources should be written in sorted order")
}

// reversed returns a reversed copy of s.
func reversed[T any](s []T) []T {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}
