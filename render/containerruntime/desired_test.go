package containerruntime

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	configv1 "github.com/openshift/api/config/v1"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	operatorv1alpha1 "github.com/openshift/api/operator/v1alpha1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/render/machineconfig"
	"github.com/imagemode/imagemode/render/registries"
)

const releaseImage = "quay.io/openshift-release-dev/ocp-release@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestDesired(t *testing.T) {
	docs := docsICSP(t)
	tests := []struct {
		name string
		pool string
		in   registries.Inputs
		// wantNil: nothing to configure.
		wantNil bool
		// wantErr is a substring of the error; the error must be an *InvalidInputsError.
		wantErr string
		// wantFiles are the files written, in order (the reference's: registries.conf, policy.json, the
		// search-registries drop-in, each only when needed); empty means registries.conf alone.
		wantFiles []string
		check     func(t *testing.T, mc *mcfgv1.MachineConfig, conf []byte, policy []byte)
	}{
		{name: "docs ICSP gives registries.conf as Generate writes it and no policy.json",
			pool: "worker", in: registries.Inputs{ICSPs: []operatorv1alpha1.ImageContentSourcePolicy{docs}},
			check: func(t *testing.T, mc *mcfgv1.MachineConfig, conf, policy []byte) {
				want, err := registries.Generate([]byte(registries.DefaultRegistriesConf), registries.Inputs{ICSPs: []operatorv1alpha1.ImageContentSourcePolicy{docs}})
				require.NoError(t, err)
				assert.Equal(t, string(want), string(conf))
				assert.Len(t, decodeRegistries(t, conf).Registries, 6)
			}},
		{name: "master pool gets its own name and role",
			pool: "master", in: registries.Inputs{ICSPs: []operatorv1alpha1.ImageContentSourcePolicy{docs}},
			check: func(t *testing.T, mc *mcfgv1.MachineConfig, _, _ []byte) {
				assert.Equal(t, "99-master-generated-registries", mc.Name)
				assert.Equal(t, map[string]string{wellknown.RoleLabel: "master"}, mc.Labels)
			}},
		{name: "IDMS and ITMS give digest-only and tag-only mirrors",
			pool: "worker", in: registries.Inputs{
				IDMSs: []configv1.ImageDigestMirrorSet{idms("digests", configv1.NeverContactSource, "registry.example.com/team", "mirror.example.net/team")},
				ITMSs: []configv1.ImageTagMirrorSet{itms("tags", "", "quay.io/org", "mirror.example.net/org")},
			},
			check: func(t *testing.T, _ *mcfgv1.MachineConfig, conf, policy []byte) {
				c := decodeRegistries(t, conf)
				team := findRegistry(t, c, "registry.example.com/team")
				assert.True(t, team.Blocked, "NeverContactSource blocks the source")
				require.Len(t, team.Mirrors, 1)
				assert.Equal(t, "mirror.example.net/team", team.Mirrors[0].Location)
				assert.Equal(t, sysregistriesv2.MirrorByDigestOnly, team.Mirrors[0].PullFromMirror)
				org := findRegistry(t, c, "quay.io/org")
				assert.False(t, org.Blocked)
				require.Len(t, org.Mirrors, 1)
				assert.Equal(t, sysregistriesv2.MirrorByTagOnly, org.Mirrors[0].PullFromMirror)
			}},
		{name: "image blockedRegistries only: policy.json rejects them, registries.conf blocks them",
			pool: "worker", in: registries.Inputs{Image: imageConfig(configv1.RegistrySources{BlockedRegistries: []string{"untrusted.example.com"}})},
			wantFiles: []string{RegistriesConfPath, PolicyJSONPath},
			check: func(t *testing.T, _ *mcfgv1.MachineConfig, conf, policy []byte) {
				assert.True(t, findRegistry(t, decodeRegistries(t, conf), "untrusted.example.com").Blocked)
				p := decodePolicy(t, policy)
				require.Len(t, p.Default, 1)
				assert.Equal(t, "insecureAcceptAnything", p.Default[0].Type)
				require.Contains(t, p.Transports["docker"], "untrusted.example.com")
				assert.Equal(t, "reject", p.Transports["docker"]["untrusted.example.com"][0].Type)
			}},
		{name: "image allowedRegistries only: policy.json alone, rejecting by default",
			pool: "worker", in: registries.Inputs{Image: imageConfig(configv1.RegistrySources{AllowedRegistries: []string{"quay.io", "registry.example.com/team"}})},
			wantFiles: []string{PolicyJSONPath},
			check: func(t *testing.T, _ *mcfgv1.MachineConfig, _, policy []byte) {
				p := decodePolicy(t, policy)
				assert.Equal(t, "reject", p.Default[0].Type)
				assert.Equal(t, "insecureAcceptAnything", p.Transports["docker"]["quay.io"][0].Type)
				assert.Contains(t, p.Transports["docker"], "registry.example.com/team")
			}},
		{name: "image insecureRegistries only: registries.conf alone",
			pool: "worker", in: registries.Inputs{Image: imageConfig(configv1.RegistrySources{InsecureRegistries: []string{"*.insecure.example"}})},
			check: func(t *testing.T, _ *mcfgv1.MachineConfig, conf, _ []byte) {
				assert.True(t, findRegistry(t, decodeRegistries(t, conf), "*.insecure.example").Insecure)
			}},
		{name: "image search registries only: the drop-in alone, neither registries.conf nor policy.json",
			pool: "worker", in: registries.Inputs{Image: imageConfig(configv1.RegistrySources{ContainerRuntimeSearchRegistries: []string{"reg1.io", "reg2.io"}})},
			wantFiles: []string{registries.SearchRegistriesDropInPath},
			check: func(t *testing.T, mc *mcfgv1.MachineConfig, _, _ []byte) {
				_, contents := files(t, mc)
				assert.Equal(t, "unqualified-search-registries = [\"reg1.io\", \"reg2.io\"]\nshort-name-mode = \"\"\nadditional-layer-store-auth-helper = \"\"\n",
					string(contents[registries.SearchRegistriesDropInPath]))
			}},
		{name: "search registries equal to the stock list still get their drop-in, as on OpenShift",
			pool: "worker", in: registries.Inputs{Image: imageConfig(configv1.RegistrySources{
				ContainerRuntimeSearchRegistries: []string{"registry.access.redhat.com", "docker.io"},
			})},
			wantFiles: []string{registries.SearchRegistriesDropInPath},
			check: func(t *testing.T, mc *mcfgv1.MachineConfig, _, _ []byte) {
				_, contents := files(t, mc)
				assert.Equal(t, []string{"registry.access.redhat.com", "docker.io"}, decodeRegistries(t, contents[registries.SearchRegistriesDropInPath]).UnqualifiedSearchRegistries)
			}},
		{name: "search registries with mirrors, insecure and blocked registries: all three files, search only in the drop-in",
			pool: "worker", in: registries.Inputs{
				ICSPs: []operatorv1alpha1.ImageContentSourcePolicy{docs},
				Image: imageConfig(configv1.RegistrySources{
					ContainerRuntimeSearchRegistries: []string{"reg1.io"},
					InsecureRegistries:               []string{"insecure.example"},
					BlockedRegistries:                []string{"untrusted.example.com"},
				}),
			},
			wantFiles: []string{RegistriesConfPath, PolicyJSONPath, registries.SearchRegistriesDropInPath},
			check: func(t *testing.T, mc *mcfgv1.MachineConfig, conf, policy []byte) {
				c := decodeRegistries(t, conf)
				assert.Equal(t, []string{"registry.access.redhat.com", "docker.io"}, c.UnqualifiedSearchRegistries, "registries.conf keeps its own search list")
				assert.True(t, findRegistry(t, c, "insecure.example").Insecure)
				assert.Equal(t, "reject", decodePolicy(t, policy).Transports["docker"]["untrusted.example.com"][0].Type)
				_, contents := files(t, mc)
				assert.Equal(t, []string{"reg1.io"}, decodeRegistries(t, contents[registries.SearchRegistriesDropInPath]).UnqualifiedSearchRegistries)
			}},
		{name: "mirror sets whose mirrors only repeat the source still write registries.conf (as the reference does), unchanged",
			pool: "worker", in: registries.Inputs{
				ICSPs: []operatorv1alpha1.ImageContentSourcePolicy{icsp("self", "quay.io/org", "quay.io/org")},
				ITMSs: []configv1.ImageTagMirrorSet{itms("self", "", "quay.io/other", "quay.io/other")},
			},
			check: func(t *testing.T, _ *mcfgv1.MachineConfig, conf, _ []byte) {
				stock, err := registries.Generate([]byte(registries.DefaultRegistriesConf), registries.Inputs{})
				require.NoError(t, err)
				assert.Equal(t, string(stock), string(conf))
			}},

		{name: "nothing at all: nothing to configure", pool: "worker", in: registries.Inputs{}, wantNil: true},
		{name: "image config without registry sources, release image set: nothing to configure", pool: "worker",
			in: registries.Inputs{Image: imageConfig(configv1.RegistrySources{}), ReleaseImage: releaseImage}, wantNil: true},

		{name: "invalid IDMS mirror (tag) is named with its field", pool: "worker",
			in: registries.Inputs{
				ICSPs: []operatorv1alpha1.ImageContentSourcePolicy{docs},
				IDMSs: []configv1.ImageDigestMirrorSet{idms("bad", "", "quay.io/org", "mirror.example.net/org:v1")},
			},
			wantErr: `imagedigestmirrorsets/bad: spec.imageDigestMirrors[0].mirrors[0]: Invalid value: "mirror.example.net/org:v1": must not include a tag`},
		{name: "invalid image config is named with its field", pool: "worker",
			in: registries.Inputs{Image: imageConfig(configv1.RegistrySources{
				BlockedRegistries: []string{"a.example.com"}, AllowedRegistries: []string{"b.example.com"},
			})},
			wantErr: "images/cluster: spec.registrySources.allowedRegistries: Forbidden"},
		{name: "blocking the release payload repository is refused", pool: "worker",
			in:      registries.Inputs{ReleaseImage: releaseImage, Image: imageConfig(configv1.RegistrySources{BlockedRegistries: []string{"quay.io"}})},
			wantErr: "images/cluster: spec.registrySources.blockedRegistries[0]"},
		{name: "even when invalid for one object only, nothing is generated", pool: "master",
			in: registries.Inputs{
				IDMSs: []configv1.ImageDigestMirrorSet{
					idms("good", "", "quay.io/org", "mirror.example.net/org"),
					idms("self", configv1.NeverContactSource, "quay.io/team", "quay.io/team"),
				},
			},
			wantErr: "imagedigestmirrorsets/self: spec.imageDigestMirrors[0].mirrors[0]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mc, err := Desired(tc.pool, tc.in, "v1")
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Nil(t, mc)
				var invalid *InvalidInputsError
				require.True(t, errors.As(err, &invalid), "want *InvalidInputsError, got %T", err)
				assert.Equal(t, tc.pool, invalid.Pool)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.Contains(t, err.Error(), GeneratedName(tc.pool))
				return
			}
			require.NoError(t, err)
			if tc.wantNil {
				assert.Nil(t, mc)
				return
			}
			require.NotNil(t, mc)
			want := tc.wantFiles
			if len(want) == 0 {
				want = []string{RegistriesConfPath}
			}
			checkCommon(t, tc.pool, mc, want)
			_, contents := files(t, mc)
			tc.check(t, mc, contents[RegistriesConfPath], contents[PolicyJSONPath])
		})
	}
}

// checkCommon checks what every generated config has: name, role, version, Ignition 3.5 with exactly the
// files want in that order, mode 0644, overwrite, data: URL contents, and that the render core accepts it.
func checkCommon(t *testing.T, pool string, mc *mcfgv1.MachineConfig, want []string) {
	t.Helper()
	assert.Equal(t, GeneratedName(pool), mc.Name)
	assert.Equal(t, "99-"+pool+"-generated-registries", mc.Name)
	assert.Equal(t, pool, mc.Labels[wellknown.RoleLabel])
	assert.Equal(t, map[string]string{wellknown.GeneratedByControllerVersionAnnotation: "v1"}, mc.Annotations)
	assert.Empty(t, mc.OwnerReferences)
	assert.Equal(t, "MachineConfig", mc.Kind)
	var probe struct {
		Ignition struct{ Version string } `json:"ignition"`
	}
	require.NoError(t, json.Unmarshal(mc.Spec.Config.Raw, &probe))
	assert.Equal(t, machineconfig.IgnitionVersion, probe.Ignition.Version, "written as Ignition 3.5, not converted")
	cfg, err := machineconfig.ParseIgnition(mc.Spec.Config.Raw)
	require.NoError(t, err)
	var paths []string
	for _, f := range cfg.Storage.Files {
		paths = append(paths, f.Path)
	}
	assert.Equal(t, want, paths)
	byPath, _ := files(t, mc)
	for _, p := range want {
		f, ok := byPath[p]
		require.True(t, ok, "no file %s", p)
		require.NotNil(t, f.Mode)
		assert.Equal(t, 0o644, *f.Mode, "%s mode", p)
		require.NotNil(t, f.Overwrite)
		assert.True(t, *f.Overwrite, "%s overwrite", p)
		assert.True(t, strings.HasPrefix(*f.Contents.Source, "data:"), "%s contents are a data: URL", p)
		assert.Nil(t, f.Contents.Compression)
	}
	assert.Empty(t, machineconfig.ValidateMachineConfig(mc), "the render core must accept the generated config")
}

// TestDesiredDeterministic checks that the output does not depend on the order of the input objects and is the
// same on every call.
func TestDesiredDeterministic(t *testing.T) {
	a := registries.Inputs{
		ICSPs: []operatorv1alpha1.ImageContentSourcePolicy{docsICSP(t), icsp("b", "quay.io/b", "mirror.example.net/b")},
		IDMSs: []configv1.ImageDigestMirrorSet{idms("x", "", "quay.io/x", "m1.example.net/x"), idms("y", "", "quay.io/x", "m2.example.net/x")},
		ITMSs: []configv1.ImageTagMirrorSet{itms("t1", "", "quay.io/t", "m1.example.net/t"), itms("t2", "", "quay.io/u", "m2.example.net/u")},
		Image: imageConfig(configv1.RegistrySources{InsecureRegistries: []string{"m1.example.net"}, BlockedRegistries: []string{"bad.example.com", "worse.example.com"}}),
	}
	b := a
	b.ICSPs = []operatorv1alpha1.ImageContentSourcePolicy{a.ICSPs[1], a.ICSPs[0]}
	b.IDMSs = []configv1.ImageDigestMirrorSet{a.IDMSs[1], a.IDMSs[0]}
	b.ITMSs = []configv1.ImageTagMirrorSet{a.ITMSs[1], a.ITMSs[0]}
	first, err := Desired("worker", a, "v1")
	require.NoError(t, err)
	require.NotNil(t, first)
	for i, in := range []registries.Inputs{a, b, b} {
		again, err := Desired("worker", in, "v1")
		require.NoError(t, err)
		assert.Equal(t, string(first.Spec.Config.Raw), string(again.Spec.Config.Raw), "pass %d", i)
		assert.Equal(t, first, again, "pass %d", i)
	}
}

func TestNeedsUpdate(t *testing.T) {
	desired, err := Desired("worker", registries.Inputs{ICSPs: []operatorv1alpha1.ImageContentSourcePolicy{docsICSP(t)}}, "v1")
	require.NoError(t, err)
	reordered := func() []byte {
		var v map[string]any
		require.NoError(t, json.Unmarshal(desired.Spec.Config.Raw, &v))
		// Another key order and spacing than json.Marshal of the Ignition types, as the API server may store it.
		out, err := json.MarshalIndent(v, "", "    ")
		require.NoError(t, err)
		return out
	}()
	tests := []struct {
		name   string
		mutate func(mc *mcfgv1.MachineConfig)
		want   bool
	}{
		{name: "identical", mutate: func(*mcfgv1.MachineConfig) {}, want: false},
		{name: "same Ignition, other encoding", mutate: func(mc *mcfgv1.MachineConfig) { mc.Spec.Config.Raw = reordered }, want: false},
		{name: "labels and annotations of others are not ours", mutate: func(mc *mcfgv1.MachineConfig) {
			mc.Labels["team"] = "infra"
			mc.Annotations["note"] = "hello"
			mc.ResourceVersion, mc.UID = "42", "uid"
		}, want: false},
		{name: "empty lists equal omitted ones", mutate: func(mc *mcfgv1.MachineConfig) {
			mc.Spec.KernelArguments, mc.Spec.Extensions = []string{}, []string{}
		}, want: false},
		{name: "other controller version", mutate: func(mc *mcfgv1.MachineConfig) {
			mc.Annotations[wellknown.GeneratedByControllerVersionAnnotation] = "v0"
		}, want: true},
		{name: "annotation missing (a user's config)", mutate: func(mc *mcfgv1.MachineConfig) { mc.Annotations = nil }, want: true},
		{name: "other role", mutate: func(mc *mcfgv1.MachineConfig) { mc.Labels[wellknown.RoleLabel] = "master" }, want: true},
		{name: "Ignition edited", mutate: func(mc *mcfgv1.MachineConfig) {
			mc.Spec.Config = runtime.RawExtension{Raw: []byte(`{"ignition":{"version":"3.5.0"}}`)}
		}, want: true},
		{name: "extra spec field", mutate: func(mc *mcfgv1.MachineConfig) { mc.Spec.KernelArguments = []string{"nosmt"} }, want: true},
		{name: "unparsable Ignition", mutate: func(mc *mcfgv1.MachineConfig) { mc.Spec.Config.Raw = []byte(`{`) }, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			existing := desired.DeepCopy()
			tc.mutate(existing)
			assert.Equal(t, tc.want, needsUpdate(existing, desired))
		})
	}
}

func TestGeneratedName(t *testing.T) {
	tests := []struct {
		name   string
		mcName string
		pool   string
		ok     bool
	}{
		{name: "worker", mcName: "99-worker-generated-registries", pool: "worker", ok: true},
		{name: "pool with dashes", mcName: "99-my-infra-pool-generated-registries", pool: "my-infra-pool", ok: true},
		{name: "rendered config", mcName: "rendered-worker-0123", ok: false},
		{name: "container runtime config", mcName: "99-worker-generated-containerruntime", ok: false},
		{name: "no pool", mcName: "99--generated-registries", ok: false},
		{name: "other prefix", mcName: "98-worker-generated-registries", ok: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pool, ok := PoolForGeneratedName(tc.mcName)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.pool, pool)
			if ok {
				assert.Equal(t, tc.mcName, GeneratedName(pool))
			}
		})
	}
}

// policyDoc is the part of a policy.json the tests look at: the requirement types.
type policyDoc struct {
	Default    []requirement                       `json:"default"`
	Transports map[string]map[string][]requirement `json:"transports"`
}

type requirement struct {
	Type string `json:"type"`
}

func decodePolicy(t *testing.T, data []byte) policyDoc {
	t.Helper()
	var p policyDoc
	require.NoError(t, json.Unmarshal(data, &p), "policy.json:\n%s", data)
	return p
}
