package machineconfig

import (
	"regexp"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRenderedName(t *testing.T) {
	t.Parallel()
	configs := func(content string) []*mcfgv1.MachineConfig {
		return []*mcfgv1.MachineConfig{mc("00-a", "worker", fileIgn("/etc/a", "data:,"+content, "")), mc("01-b", "worker", "")}
	}
	name := func(pool, content string) string {
		spec, err := Merge(configs(content), Base{OSImageURL: "quay.io/os@sha256:1"})
		require.NoError(t, err)
		n, err := RenderedName(pool, spec)
		require.NoError(t, err)
		return n
	}
	first := name("worker", "one")
	assert.Regexp(t, regexp.MustCompile(`^rendered-worker-[0-9a-f]{32}$`), first)
	assert.Equal(t, first, name("worker", "one"), "same input, same name")
	changed := name("worker", "two")
	assert.NotEqual(t, first, changed, "spec change, new name")
	assert.Equal(t, first, name("worker", "one"), "revert gives the old name back")
	assert.Regexp(t, `^rendered-infra-`, name("infra", "one"))
}
