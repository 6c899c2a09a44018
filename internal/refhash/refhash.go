// Package refhash computes object names the way the reference implementation (OpenShift's Machine Config
// Operator) does, so that names it wrote and names written here agree: the hex MD5 of a fixed 80-byte salt
// followed by the YAML of each object in turn. The YAML is what github.com/ghodss/yaml (and its successor
// sigs.k8s.io/yaml, used here) produces: the object's JSON, converted to YAML with the map keys sorted.
//
// Rendered MachineConfig names (`rendered-<pool>-<hash>`, the reference's render/hash.go) and MachineOSBuild
// names (`<machineosconfig>-<hash>`, its build/buildrequest/machineosbuild.go) both use it. The hash is a
// name, not a security measure: MD5 is what makes the names match.
package refhash

import (
	"crypto/md5" //nolint:gosec // compatibility: the reference names objects by MD5
	"encoding/hex"
	"fmt"

	"sigs.k8s.io/yaml"
)

// salt is the reference's 80 salt bytes (render/hash.go, repeated in buildrequest/machineosbuild.go). It must
// never change: every name on every cluster depends on it.
var salt = [80]byte{
	16, 124, 206, 228, 139, 56, 175, 175, 79, 229, 134, 118, 157, 154, 211, 110,
	25, 93, 47, 253, 172, 106, 37, 7, 174, 13, 160, 185, 110, 17, 87, 52,
	219, 131, 12, 206, 218, 141, 116, 135, 188, 181, 192, 151, 233, 62, 126, 165,
	64, 83, 179, 119, 15, 168, 208, 197, 146, 107, 58, 227, 133, 188, 238, 26,
	33, 26, 235, 202, 32, 173, 31, 234, 41, 144, 148, 79, 6, 206, 23, 22,
}

// Sum returns the 32 hex digits of MD5(salt || YAML(objs[0]) || YAML(objs[1]) || …).
func Sum(objs ...any) (string, error) {
	h := md5.New() //nolint:gosec // see above
	h.Write(salt[:])
	for i, obj := range objs {
		data, err := yaml.Marshal(obj)
		if err != nil {
			return "", fmt.Errorf("encoding object %d of the hash as YAML: %w", i, err)
		}
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
