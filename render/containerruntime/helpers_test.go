package containerruntime

import (
	"testing"

	"github.com/BurntSushi/toml"
	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	configv1 "github.com/openshift/api/config/v1"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	operatorv1alpha1 "github.com/openshift/api/operator/v1alpha1"
	"github.com/stretchr/testify/require"
	"github.com/vincent-petithory/dataurl"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/imagemode/imagemode/examples"
	"github.com/imagemode/imagemode/render/machineconfig"
)

func docsICSP(t *testing.T) operatorv1alpha1.ImageContentSourcePolicy {
	t.Helper()
	raw, err := examples.Doc(examples.ImageContentSourcePolicyUBI8Repo)
	require.NoError(t, err)
	var icsp operatorv1alpha1.ImageContentSourcePolicy
	require.NoError(t, yaml.UnmarshalStrict(raw, &icsp))
	return icsp
}

func icsp(name string, source string, mirrors ...string) operatorv1alpha1.ImageContentSourcePolicy {
	return operatorv1alpha1.ImageContentSourcePolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: operatorv1alpha1.ImageContentSourcePolicySpec{
			RepositoryDigestMirrors: []operatorv1alpha1.RepositoryDigestMirrors{{Source: source, Mirrors: mirrors}},
		},
	}
}

func idms(name string, policy configv1.MirrorSourcePolicy, source string, mirrors ...string) configv1.ImageDigestMirrorSet {
	return configv1.ImageDigestMirrorSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: configv1.ImageDigestMirrorSetSpec{ImageDigestMirrors: []configv1.ImageDigestMirrors{
			{Source: source, Mirrors: imageMirrors(mirrors), MirrorSourcePolicy: policy},
		}},
	}
}

func itms(name string, policy configv1.MirrorSourcePolicy, source string, mirrors ...string) configv1.ImageTagMirrorSet {
	return configv1.ImageTagMirrorSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: configv1.ImageTagMirrorSetSpec{ImageTagMirrors: []configv1.ImageTagMirrors{
			{Source: source, Mirrors: imageMirrors(mirrors), MirrorSourcePolicy: policy},
		}},
	}
}

func imageMirrors(ms []string) []configv1.ImageMirror {
	out := make([]configv1.ImageMirror, len(ms))
	for i, m := range ms {
		out[i] = configv1.ImageMirror(m)
	}
	return out
}

func imageConfig(src configv1.RegistrySources) *configv1.Image {
	return &configv1.Image{ObjectMeta: metav1.ObjectMeta{Name: ImageConfigName}, Spec: configv1.ImageSpec{RegistrySources: src}}
}

// files parses mc's Ignition and returns its files by path, with their decoded contents.
func files(t *testing.T, mc *mcfgv1.MachineConfig) (map[string]ign3types.File, map[string][]byte) {
	t.Helper()
	cfg, err := machineconfig.ParseIgnition(mc.Spec.Config.Raw)
	require.NoError(t, err)
	byPath := map[string]ign3types.File{}
	contents := map[string][]byte{}
	for _, f := range cfg.Storage.Files {
		byPath[f.Path] = f
		require.NotNil(t, f.Contents.Source, "file %s has no contents", f.Path)
		du, err := dataurl.DecodeString(*f.Contents.Source)
		require.NoError(t, err, "file %s", f.Path)
		contents[f.Path] = du.Data
	}
	return byPath, contents
}

// decodeRegistries decodes a registries.conf.
func decodeRegistries(t *testing.T, data []byte) sysregistriesv2.V2RegistriesConf {
	t.Helper()
	var conf sysregistriesv2.V2RegistriesConf
	_, err := toml.Decode(string(data), &conf)
	require.NoError(t, err, "registries.conf:\n%s", data)
	return conf
}

// findRegistry returns the entry of conf keyed by scope.
func findRegistry(t *testing.T, conf sysregistriesv2.V2RegistriesConf, scope string) sysregistriesv2.Registry {
	t.Helper()
	for _, r := range conf.Registries {
		if r.Location == scope || r.Prefix == scope {
			return r
		}
	}
	require.Failf(t, "registry not found", "no entry for %s in %+v", scope, conf.Registries)
	return sysregistriesv2.Registry{}
}
