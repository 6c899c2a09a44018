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

// TestRenderedNameVector pins one name to the value the reference computes for the same configs: MD5 of
// its salt and the YAML of the merged spec below (the YAML as the reference's rendered configs carry it —
// Ignition 3.5's empty structs included, empty lists as [] —, hashed with Python's hashlib, independently
// of this code). It fails if the merge, the encoding or the salt drift from the reference.
func TestRenderedNameVector(t *testing.T) {
	t.Parallel()
	// The YAML hashed:
	//
	//	baseOSExtensionsContainerImage: ""
	//	config:
	//	  ignition:
	//	    config:
	//	      replace:
	//	        verification: {}
	//	    proxy: {}
	//	    security:
	//	      tls: {}
	//	    timeouts: {}
	//	    version: 3.5.0
	//	  kernelArguments: {}
	//	  passwd:
	//	    users:
	//	    - name: core
	//	      sshAuthorizedKeys:
	//	      - ssh-ed25519 AAAA core
	//	  storage:
	//	    files:
	//	    - contents:
	//	        source: data:,hello
	//	        verification: {}
	//	      group: {}
	//	      mode: 420
	//	      overwrite: true
	//	      path: /etc/motd
	//	      user: {}
	//	  systemd: {}
	//	extensions: []
	//	fips: false
	//	kernelArguments: []
	//	kernelType: default
	//	osImageURL: quay.io/openshift/os@sha256:0123
	spec, err := Merge([]*mcfgv1.MachineConfig{mc("00-worker", "worker",
		`{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/motd","mode":420,"contents":{"source":"data:,hello"}}]},`+
			`"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["ssh-ed25519 AAAA core"]}]}}`)},
		Base{OSImageURL: "quay.io/openshift/os@sha256:0123"})
	require.NoError(t, err)
	name, err := RenderedName("worker", spec)
	require.NoError(t, err)
	assert.Equal(t, "rendered-worker-8bbc3ca20798efb638e01ef8edc231d3", name)
}
