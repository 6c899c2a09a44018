package containerruntime

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/vincent-petithory/dataurl"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/render/machineconfig"
	"github.com/imagemode/imagemode/render/registries"
)

// Paths of the files the generated config writes.
const (
	RegistriesConfPath = "/etc/containers/registries.conf"
	PolicyJSONPath     = "/etc/containers/policy.json"
)

// fileMode is the mode of both generated files (0644).
const fileMode = 0o644

// Parts of the generated config's name, 99-<pool>-generated-registries.
const (
	generatedPrefix = "99-"
	generatedSuffix = "-generated-registries"
)

// GeneratedName is the name of the MachineConfig generated for pool: 99-<pool>-generated-registries.
func GeneratedName(pool string) string {
	return generatedPrefix + pool + generatedSuffix
}

// PoolForGeneratedName returns the pool a MachineConfig named by GeneratedName belongs to, and false for any
// other name.
func PoolForGeneratedName(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, generatedPrefix)
	if !ok {
		return "", false
	}
	pool, ok := strings.CutSuffix(rest, generatedSuffix)
	if !ok || pool == "" {
		return "", false
	}
	return pool, true
}

// Desired returns the MachineConfig GeneratedName(pool): role label pool, generated-by-controller-version
// annotation version, and Ignition IgnitionVersion writing, mode 0644, overwritten, as data: URLs, in this
// order, the files the inputs need (decided as the reference decides, see registries.NeedsRegistriesConf):
//   - RegistriesConfPath (registries.Generate on registries.DefaultRegistriesConf) when there are mirror
//     sets or insecure or blocked registries;
//   - PolicyJSONPath (registries.Policy on registries.DefaultPolicyJSON) when there are allowed or blocked
//     registries;
//   - registries.SearchRegistriesDropInPath (registries.SearchRegistriesConf) when the image config sets
//     containerRuntimeSearchRegistries. Search registries alone therefore write only the drop-in, as on
//     OpenShift.
//
// It returns nil when no file is needed; a generated config that exists should then be deleted.
//
// Invalid inputs (registries.Validate) return an *InvalidInputsError, whose field errors name the object and
// field, and no config.
//
// The result depends only on the arguments, not on the order of the objects in in.
func Desired(pool string, in registries.Inputs, version string) (*mcfgv1.MachineConfig, error) {
	if errs := registries.Validate(in); len(errs) > 0 {
		return nil, &InvalidInputsError{Pool: pool, Errs: errs}
	}
	var files []ign3types.File
	if registries.NeedsRegistriesConf(in) {
		conf, err := registries.Generate([]byte(registries.DefaultRegistriesConf), in)
		if err != nil {
			return nil, fmt.Errorf("generating registries.conf for pool %s: %w", pool, err)
		}
		files = append(files, embeddedFile(RegistriesConfPath, conf))
	}
	if registries.NeedsPolicy(in) {
		policy, err := registries.Policy([]byte(registries.DefaultPolicyJSON), in)
		if err != nil {
			return nil, fmt.Errorf("generating policy.json for pool %s: %w", pool, err)
		}
		files = append(files, embeddedFile(PolicyJSONPath, policy))
	}
	if registries.NeedsSearchRegistries(in) {
		search, err := registries.SearchRegistriesConf(in)
		if err != nil {
			return nil, fmt.Errorf("generating %s for pool %s: %w", registries.SearchRegistriesDropInPath, pool, err)
		}
		files = append(files, embeddedFile(registries.SearchRegistriesDropInPath, search))
	}
	if len(files) == 0 {
		return nil, nil
	}

	ign := machineconfig.EmptyIgnition()
	ign.Storage.Files = files
	raw, err := json.Marshal(ign)
	if err != nil {
		return nil, fmt.Errorf("encoding Ignition of %s: %w", GeneratedName(pool), err)
	}
	return &mcfgv1.MachineConfig{
		TypeMeta: metav1.TypeMeta{APIVersion: mcfgv1.GroupVersion.String(), Kind: "MachineConfig"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        GeneratedName(pool),
			Labels:      map[string]string{wellknown.RoleLabel: pool},
			Annotations: map[string]string{wellknown.GeneratedByControllerVersionAnnotation: version},
		},
		Spec: mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: raw}},
	}, nil
}

// embeddedFile is an Ignition file at path with data as a data: URL, mode 0644, overwriting what is there.
func embeddedFile(path string, data []byte) ign3types.File {
	overwrite := true
	mode := fileMode
	source := dataurl.EncodeBytes(data)
	return ign3types.File{
		Node:          ign3types.Node{Path: path, Overwrite: &overwrite},
		FileEmbedded1: ign3types.FileEmbedded1{Mode: &mode, Contents: ign3types.Resource{Source: &source}},
	}
}

// needsUpdate reports whether existing differs from desired in what this controller owns: the spec, the role
// label and the generated-by-controller-version annotation. Other labels and annotations are not ours.
// Ignition is compared as JSON values, since the API server may store it with another key order.
func needsUpdate(existing, desired *mcfgv1.MachineConfig) bool {
	for k, v := range desired.Labels {
		if got, ok := existing.Labels[k]; !ok || got != v {
			return true
		}
	}
	for k, v := range desired.Annotations {
		if got, ok := existing.Annotations[k]; !ok || got != v {
			return true
		}
	}
	return !sameSpec(existing.Spec, desired.Spec)
}

// sameSpec compares two MachineConfig specs: their Ignition configs as decoded JSON values, the other fields
// as values, an empty list being equal to an omitted one.
func sameSpec(a, b mcfgv1.MachineConfigSpec) bool {
	ca, errA := decodeJSON(a.Config.Raw)
	cb, errB := decodeJSON(b.Config.Raw)
	if errA != nil || errB != nil || !reflect.DeepEqual(ca, cb) {
		return false
	}
	a.Config, b.Config = runtime.RawExtension{}, runtime.RawExtension{}
	for _, spec := range []*mcfgv1.MachineConfigSpec{&a, &b} {
		if len(spec.KernelArguments) == 0 {
			spec.KernelArguments = nil
		}
		if len(spec.Extensions) == 0 {
			spec.Extensions = nil
		}
	}
	return reflect.DeepEqual(a, b)
}

// decodeJSON decodes raw JSON into generic values; empty input is nil.
func decodeJSON(raw []byte) (any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return v, nil
}
