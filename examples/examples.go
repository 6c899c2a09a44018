// Package examples holds acceptance material: the YAML examples of the OpenShift documentation this project
// is built from (docs/, verbatim but for the page's callout markers), embedded so that tests and the
// embedded local default apply exactly these bytes.
package examples

import (
	"embed"
	"fmt"
)

//go:embed docs/*.yaml
var docsFS embed.FS

// MachineOSConfigLayeredImage is the docs' MachineOSConfig example (pool layered-image, `FROM configs AS
// final`, imageBuilderType Job, push spec and secrets).
const MachineOSConfigLayeredImage = "docs/machineosconfig-layered-image.yaml"

// ImageContentSourcePolicyUBI8Repo is the docs' ImageContentSourcePolicy example (six sources, disconnected
// updates 11.4.5), whose registries.conf the docs show on a node.
const ImageContentSourcePolicyUBI8Repo = "docs/imagecontentsourcepolicy-ubi8repo.yaml"

// The docs' node disruption policy examples (MachineConfiguration/cluster spec.nodeDisruptionPolicy).
const (
	NodeDisruptionPolicySSHKey     = "docs/machineconfiguration-ndp-sshkey.yaml"
	NodeDisruptionPolicyFiles      = "docs/machineconfiguration-ndp-files.yaml"
	NodeDisruptionPolicyUnits      = "docs/machineconfiguration-ndp-units.yaml"
	NodeDisruptionPolicyRegistries = "docs/machineconfiguration-ndp-registries.yaml"
)

// MachineConfigPoolWorkerCanary is the docs' canary pool (worker-canary: the worker role's configs, the
// nodes labelled canary-update-group=true), from the canary update recipe that pauses master and worker.
const MachineConfigPoolWorkerCanary = "docs/machineconfigpool-worker-canary.yaml"

// Doc returns the content of one embedded docs example, by its path (e.g. MachineOSConfigLayeredImage).
func Doc(name string) ([]byte, error) {
	raw, err := docsFS.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("reading example %s: %w", name, err)
	}
	return raw, nil
}
