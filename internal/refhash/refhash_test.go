package refhash

import (
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// spec is a small rendered spec; wantYAML is its YAML written out by hand (sorted keys, empty list kept,
// nil list as null), and wantSum the MD5 of the salt and that YAML computed independently of this package
// (Python's hashlib over the same bytes), so the test fails if the salt, the encoding or the order changes.
var (
	spec = mcfgv1.MachineConfigSpec{
		OSImageURL:      "quay.io/openshift/os@sha256:0123",
		Config:          runtime.RawExtension{Raw: []byte(`{"storage":{"files":[{"path":"/etc/a","mode":420}]},"ignition":{"version":"3.5.0"}}`)},
		KernelArguments: []string{},
		KernelType:      "default",
	}
	wantYAML = `baseOSExtensionsContainerImage: ""
config:
  ignition:
    version: 3.5.0
  storage:
    files:
    - mode: 420
      path: /etc/a
extensions: null
fips: false
kernelArguments: []
kernelType: default
osImageURL: quay.io/openshift/os@sha256:0123
`
	wantSum = "faa7ea2327cd593cbccc340e069bc120"
)

func TestSum(t *testing.T) {
	t.Parallel()
	data, err := yaml.Marshal(spec)
	require.NoError(t, err)
	assert.Equal(t, wantYAML, string(data), "the YAML the reference hashes")

	got, err := Sum(spec)
	require.NoError(t, err)
	assert.Equal(t, wantSum, got)

	again, err := Sum(&spec)
	require.NoError(t, err)
	assert.Equal(t, got, again, "a pointer hashes like its value")

	two, err := Sum(spec, spec)
	require.NoError(t, err)
	assert.NotEqual(t, got, two, "every object is hashed")
	assert.Len(t, two, 32)
}
