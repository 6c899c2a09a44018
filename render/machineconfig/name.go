package machineconfig

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"

	"github.com/imagemode/imagemode/internal/wellknown"
)

// renderSalt is mixed into the hash, so rendered names are this project's own (the same length and shape
// as the reference's, not the same values).
const renderSalt = "imagemode/rendered-machineconfig/v1\x00"

// RenderedName names a rendered config: rendered-<pool>-<32 hex>, a digest of the merged spec only, so the
// same spec always gets the same name and any spec change a new one.
func RenderedName(pool string, spec *mcfgv1.MachineConfigSpec) (string, error) {
	raw, err := json.Marshal(spec)
	if err != nil {
		return "", fmt.Errorf("encoding rendered spec of pool %q: %w", pool, err)
	}
	h := sha256.New()
	h.Write([]byte(renderSalt))
	h.Write(raw)
	return wellknown.RenderedPrefix + pool + "-" + hex.EncodeToString(h.Sum(nil))[:32], nil
}
