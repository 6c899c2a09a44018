package machineconfig

import (
	"fmt"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"

	"github.com/imagemode/imagemode/internal/refhash"
	"github.com/imagemode/imagemode/internal/wellknown"
)

// RenderedName names a rendered config exactly as the reference does (its render/hash.go):
// rendered-<pool>-<hex MD5 of the reference's salt and the YAML of the merged spec>. Only the spec is hashed,
// so the same spec always gets the same name, a revert gives the old name back, and a pool taken over from
// the reference keeps the name its nodes already run (nothing rolls out). The name is only compatible
// because Merge builds the spec the way the reference does, down to the empty (not null) kernelArguments
// and extensions lists and the JSON of the Ignition 3.5 types.
func RenderedName(pool string, spec *mcfgv1.MachineConfigSpec) (string, error) {
	sum, err := refhash.Sum(spec)
	if err != nil {
		return "", fmt.Errorf("naming rendered config of pool %q: %w", pool, err)
	}
	return wellknown.RenderedPrefix + pool + "-" + sum, nil
}
