package registry

import (
	"net/url"
	"testing"

	configv1 "github.com/openshift/api/config/v1"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRegistryCAsAndProxy(t *testing.T) {
	t.Parallel()
	assert.Empty(t, RegistryCAs(nil))
	assert.Nil(t, ProxyFunc(nil))
	cc := &mcfgv1.ControllerConfig{}
	cc.Spec.ImageRegistryBundleData = []mcfgv1.ImageRegistryBundle{{File: "reg..5000", Data: []byte("a")}}
	cc.Spec.ImageRegistryBundleUserData = []mcfgv1.ImageRegistryBundle{{File: "reg..5000", Data: []byte("b")}, {File: "other", Data: []byte("c")}}
	assert.Equal(t, map[string][]byte{"reg..5000": []byte("ab"), "other": []byte("c")}, RegistryCAs(cc))
	assert.Nil(t, ProxyFunc(cc), "no proxy configured")

	cc.Spec.Proxy = &configv1.ProxyStatus{HTTPSProxy: "http://proxy.example:3128", NoProxy: "internal.example"}
	proxy := ProxyFunc(cc)
	require.NotNil(t, proxy)
	got, err := proxy(&url.URL{Scheme: "https", Host: "quay.io"})
	require.NoError(t, err)
	assert.Equal(t, "http://proxy.example:3128", got.String())
	got, err = proxy(&url.URL{Scheme: "https", Host: "registry.internal.example:5000"})
	require.NoError(t, err)
	assert.Nil(t, got, "noProxy honoured")
}
