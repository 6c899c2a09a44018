package machineconfig

// Rules of rendering a pool's MachineConfigs into one (they match the reference implementation, so a pool
// renders the same way here as on OpenShift):
//
//  1. Order. Configs labelled role=worker come first, sorted by name; then all others, sorted by name. In
//     a custom pool (selector role in [worker, infra]) every custom-role config therefore overrides every
//     worker config, whatever the names. A config without labels is an error.
//  2. Ignition. Each config is parsed (spec 2.x and 3.0–3.4 converted to 3.5) and merged into the result of
//     the previous ones with Ignition's own merge: scalars and set pointers of the later config win; keyed
//     lists merge entry by entry with the later entry winning (files, links and directories by path —
//     across the three lists —, units and drop-ins by name, users and groups by name); other lists (ssh
//     keys) are a union in order without duplicates.
//  3. Compression never leaks: a later file that does not say how it is compressed is not compressed, even
//     if an earlier file at the same path was gzip.
//  4. Every file without an explicit overwrite gets overwrite: true.
//  5. fips is true if any config sets it. kernelType is the last non-default value (realtime or 64k-pages),
//     else "default".
//  6. kernelArguments and extensions are concatenated in order, without removing duplicates. kernel-devel
//     with a non-default kernel is an error.
//  7. osImageURL and baseOSExtensionsContainerImage come from the base (the cluster's ControllerConfig),
//     overridden by the last config that sets them and is not controller-generated.
//  8. The result has a spec only; it is named by RenderedName.

import (
	"encoding/json"
	"fmt"
	"sort"

	ign3 "github.com/coreos/ignition/v2/config/v3_5"
	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/imagemode/imagemode/internal/wellknown"
)

// Kernel types a MachineConfig may ask for.
const (
	KernelTypeDefault  = "default"
	KernelTypeRealtime = "realtime"
	KernelType64kPages = "64k-pages"
)

// Base is what the cluster supplies to every pool's render.
type Base struct {
	// OSImageURL is the base OS image (ControllerConfig spec.baseOSContainerImage).
	OSImageURL string
	// BaseOSExtensionsContainerImage is the extensions image (ControllerConfig spec.baseOSExtensionsContainerImage).
	BaseOSExtensionsContainerImage string
}

// SortForMerge returns the configs in merge order (rule 1). It does not modify its input.
func SortForMerge(configs []*mcfgv1.MachineConfig) ([]*mcfgv1.MachineConfig, error) {
	var worker, other []*mcfgv1.MachineConfig
	for _, mc := range configs {
		if len(mc.Labels) == 0 {
			return nil, fmt.Errorf("machineconfig %q: metadata.labels: Required value: a MachineConfig needs a role label to be selected", mc.Name)
		}
		if mc.Labels[wellknown.RoleLabel] == wellknown.WorkerPool {
			worker = append(worker, mc)
		} else {
			other = append(other, mc)
		}
	}
	byName := func(s []*mcfgv1.MachineConfig) {
		sort.SliceStable(s, func(i, j int) bool { return s[i].Name < s[j].Name })
	}
	byName(worker)
	byName(other)
	return append(worker, other...), nil
}

// Merge renders configs into one MachineConfig spec following the rules above. Errors name the config.
func Merge(configs []*mcfgv1.MachineConfig, base Base) (*mcfgv1.MachineConfigSpec, error) {
	sorted, err := SortForMerge(configs)
	if err != nil {
		return nil, err
	}
	merged := EmptyIgnition()
	out := &mcfgv1.MachineConfigSpec{
		OSImageURL:                     base.OSImageURL,
		BaseOSExtensionsContainerImage: base.BaseOSExtensionsContainerImage,
		KernelType:                     KernelTypeDefault,
	}
	kernelDevelFrom := ""
	for _, mc := range sorted {
		child, err := ParseIgnition(mc.Spec.Config.Raw)
		if err != nil {
			return nil, fmt.Errorf("machineconfig %q: spec.config: %w", mc.Name, err)
		}
		merged = mergeIgnition(merged, child)

		out.FIPS = out.FIPS || mc.Spec.FIPS
		if mc.Spec.KernelType == KernelTypeRealtime || mc.Spec.KernelType == KernelType64kPages {
			out.KernelType = mc.Spec.KernelType
		}
		out.KernelArguments = append(out.KernelArguments, mc.Spec.KernelArguments...)
		out.Extensions = append(out.Extensions, mc.Spec.Extensions...)
		for _, e := range mc.Spec.Extensions {
			if e == "kernel-devel" && kernelDevelFrom == "" {
				kernelDevelFrom = mc.Name
			}
		}
		if !IsControllerGenerated(mc) {
			if mc.Spec.OSImageURL != "" {
				out.OSImageURL = mc.Spec.OSImageURL
			}
			if mc.Spec.BaseOSExtensionsContainerImage != "" {
				out.BaseOSExtensionsContainerImage = mc.Spec.BaseOSExtensionsContainerImage
			}
		}
	}
	if kernelDevelFrom != "" && out.KernelType != KernelTypeDefault {
		return nil, fmt.Errorf("machineconfig %q: spec.extensions: Invalid value: \"kernel-devel\": not supported with kernelType %q", kernelDevelFrom, out.KernelType)
	}
	for i := range merged.Storage.Files {
		if merged.Storage.Files[i].Overwrite == nil {
			merged.Storage.Files[i].Overwrite = ptr.To(true)
		}
	}
	raw, err := json.Marshal(merged)
	if err != nil {
		return nil, fmt.Errorf("encoding merged Ignition: %w", err)
	}
	out.Config = runtime.RawExtension{Raw: raw}
	return out, nil
}

// mergeIgnition merges child into parent with Ignition's merge, keeping compression from leaking (rule 3):
// a child file with no compression field is marked explicitly uncompressed for the merge, so it replaces a
// parent's "gzip", and the marker is removed afterwards.
func mergeIgnition(parent, child ign3types.Config) ign3types.Config {
	for i := range child.Storage.Files {
		if child.Storage.Files[i].Contents.Compression == nil {
			child.Storage.Files[i].Contents.Compression = ptr.To("")
		}
	}
	out := ign3.Merge(parent, child)
	for i := range out.Storage.Files {
		if c := out.Storage.Files[i].Contents.Compression; c != nil && *c == "" {
			out.Storage.Files[i].Contents.Compression = nil
		}
	}
	out.Ignition.Version = IgnitionVersion
	return out
}

// IsControllerGenerated reports whether mc was written by a controller rather than a user.
func IsControllerGenerated(mc *mcfgv1.MachineConfig) bool {
	_, ok := mc.Annotations[wellknown.GeneratedByControllerVersionAnnotation]
	return ok
}

// IgnitionOf parses the Ignition of a (rendered) MachineConfig spec.
func IgnitionOf(spec *mcfgv1.MachineConfigSpec) (ign3types.Config, error) {
	return ParseIgnition(spec.Config.Raw)
}
