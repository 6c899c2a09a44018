package registries

import (
	"testing"

	"github.com/BurntSushi/toml"
	configv1 "github.com/openshift/api/config/v1"
	operatorv1alpha1 "github.com/openshift/api/operator/v1alpha1"
	"github.com/stretchr/testify/require"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// releaseImage is a payload pull spec for the blocking tests.
const releaseImage = "quay.io/openshift-release-dev/ocp-release@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func icsp(name string, items ...operatorv1alpha1.RepositoryDigestMirrors) operatorv1alpha1.ImageContentSourcePolicy {
	return operatorv1alpha1.ImageContentSourcePolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       operatorv1alpha1.ImageContentSourcePolicySpec{RepositoryDigestMirrors: items},
	}
}

func rdm(source string, mirrors ...string) operatorv1alpha1.RepositoryDigestMirrors {
	return operatorv1alpha1.RepositoryDigestMirrors{Source: source, Mirrors: mirrors}
}

func idms(name string, items ...configv1.ImageDigestMirrors) configv1.ImageDigestMirrorSet {
	return configv1.ImageDigestMirrorSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       configv1.ImageDigestMirrorSetSpec{ImageDigestMirrors: items},
	}
}

func idm(source string, policy configv1.MirrorSourcePolicy, mirrors ...string) configv1.ImageDigestMirrors {
	return configv1.ImageDigestMirrors{Source: source, Mirrors: toImageMirrors(mirrors), MirrorSourcePolicy: policy}
}

func itms(name string, items ...configv1.ImageTagMirrors) configv1.ImageTagMirrorSet {
	return configv1.ImageTagMirrorSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       configv1.ImageTagMirrorSetSpec{ImageTagMirrors: items},
	}
}

func itm(source string, policy configv1.MirrorSourcePolicy, mirrors ...string) configv1.ImageTagMirrors {
	return configv1.ImageTagMirrors{Source: source, Mirrors: toImageMirrors(mirrors), MirrorSourcePolicy: policy}
}

func toImageMirrors(ms []string) []configv1.ImageMirror {
	out := make([]configv1.ImageMirror, len(ms))
	for i, m := range ms {
		out[i] = configv1.ImageMirror(m)
	}
	return out
}

// image returns images.config.openshift.io/cluster with the given registry sources.
func image(src configv1.RegistrySources) *configv1.Image {
	return &configv1.Image{
		ObjectMeta: metav1.ObjectMeta{Name: "cluster"},
		Spec:       configv1.ImageSpec{RegistrySources: src},
	}
}

// digestOnly and tagOnly build mirror endpoints the way Generate writes them.
func digestOnly(location string) sysregistriesv2.Endpoint {
	return sysregistriesv2.Endpoint{Location: location, PullFromMirror: sysregistriesv2.MirrorByDigestOnly}
}

func tagOnly(location string) sysregistriesv2.Endpoint {
	return sysregistriesv2.Endpoint{Location: location, PullFromMirror: sysregistriesv2.MirrorByTagOnly}
}

func insecure(e sysregistriesv2.Endpoint) sysregistriesv2.Endpoint {
	e.Insecure = true
	return e
}

// at is a registry entry keyed by location.
func at(location string, mirrors ...sysregistriesv2.Endpoint) sysregistriesv2.Registry {
	return sysregistriesv2.Registry{Endpoint: sysregistriesv2.Endpoint{Location: location}, Mirrors: mirrors}
}

// wildcard is a registry entry keyed by a wildcard prefix.
func wildcard(prefix string) sysregistriesv2.Registry {
	return sysregistriesv2.Registry{Prefix: prefix}
}

func blockedReg(r sysregistriesv2.Registry) sysregistriesv2.Registry {
	r.Blocked = true
	return r
}

func insecureReg(r sysregistriesv2.Registry) sysregistriesv2.Registry {
	r.Insecure = true
	return r
}

// generate runs Generate and decodes its output.
func generate(t *testing.T, base string, in Inputs) sysregistriesv2.V2RegistriesConf {
	t.Helper()
	out, err := Generate([]byte(base), in)
	require.NoError(t, err)
	var conf sysregistriesv2.V2RegistriesConf
	_, err = toml.Decode(string(out), &conf)
	require.NoError(t, err, "generated:\n%s", out)
	return conf
}
