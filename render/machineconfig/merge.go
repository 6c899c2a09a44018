package machineconfig

// Rules of rendering a pool's MachineConfigs into one (they match the reference implementation, so a pool
// renders the same way here as on OpenShift):
//
//  1. Order. Configs labelled role=worker come first, sorted by name; then all others, sorted by name. In
//     a custom pool (selector role in [worker, infra]) every custom-role config therefore overrides every
//     worker config, whatever the names. A config without labels is an error.
//  2. Ignition. Each config is parsed (spec 2.x and 3.0–3.4 converted to 3.5). The first is the start; each
//     later one with Ignition is merged into the result of the previous ones with Ignition's own merge:
//     scalars and set pointers of the later config win; keyed lists merge entry by entry with the later
//     entry winning (files, links and directories by path — across the three lists —, units and drop-ins
//     by name, users and groups by name); other lists (ssh keys) are a union in order without duplicates.
//  3. Compression never leaks: a later file that does not say how it is compressed is not compressed, even
//     if an earlier file at the same path was gzip.
//  4. Every file without an explicit overwrite gets overwrite: true.
//  5. fips is true if any config sets it. kernelType is the last non-default value (realtime or 64k-pages),
//     else "default".
//  6. kernelArguments and extensions are concatenated in order, without removing duplicates (empty lists,
//     never null). kernel-devel with a non-default kernel is an error.
//  7. osImageURL and baseOSExtensionsContainerImage come from the base (the cluster's ControllerConfig),
//     overridden by the last config that sets them and is not controller-generated.
//  8. The result has a spec only; it is named by RenderedName.

import (
	"encoding/json"
	"fmt"
	"sort"

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
	parsed := make([]*Parsed, len(configs))
	for i, mc := range configs {
		parsed[i] = &Parsed{Config: mc}
	}
	sorted, err := sortParsed(parsed)
	if err != nil {
		return nil, err
	}
	out := make([]*mcfgv1.MachineConfig, len(sorted))
	for i, p := range sorted {
		out[i] = p.Config
	}
	return out, nil
}

func sortParsed(configs []*Parsed) ([]*Parsed, error) {
	var worker, other []*Parsed
	for _, p := range configs {
		if len(p.Config.Labels) == 0 {
			return nil, fmt.Errorf("machineconfig %q: metadata.labels: Required value: a MachineConfig needs a role label to be selected", p.Config.Name)
		}
		if p.Config.Labels[wellknown.RoleLabel] == wellknown.WorkerPool {
			worker = append(worker, p)
		} else {
			other = append(other, p)
		}
	}
	byName := func(s []*Parsed) {
		sort.SliceStable(s, func(i, j int) bool { return s[i].Config.Name < s[j].Config.Name })
	}
	byName(worker)
	byName(other)
	return append(worker, other...), nil
}

// Merge renders configs into one MachineConfig spec following the rules above. Errors name the config.
func Merge(configs []*mcfgv1.MachineConfig, base Base) (*mcfgv1.MachineConfigSpec, error) {
	parsed := make([]*Parsed, len(configs))
	for i, mc := range configs {
		parsed[i] = Parse(mc)
	}
	return MergeParsed(parsed, base)
}

// MergeParsed is Merge for configs parsed already (e.g. through a ParseCache).
func MergeParsed(configs []*Parsed, base Base) (*mcfgv1.MachineConfigSpec, error) {
	sorted, err := sortParsed(configs)
	if err != nil {
		return nil, err
	}
	merged := EmptyIgnition()
	// The lists start empty, not nil: the reference's spec has [] there, and the rendered name hashes it.
	out := &mcfgv1.MachineConfigSpec{
		OSImageURL:                     base.OSImageURL,
		BaseOSExtensionsContainerImage: base.BaseOSExtensionsContainerImage,
		KernelType:                     KernelTypeDefault,
		KernelArguments:                []string{},
		Extensions:                     []string{},
	}
	kernelDevelFrom := ""
	for i, p := range sorted {
		if p.ParseErr != nil {
			return nil, parseError(p)
		}
		mc := p.Config
		switch {
		case i == 0:
			// As the reference does: the first config is the start, unmerged; later configs without
			// Ignition are not merged at all (a merge would normalize the files' compression).
			merged = p.Ignition
		case len(mc.Spec.Config.Raw) > 0:
			merged = mergeIgnition(merged, p.Ignition)
		}

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
	// A copy: merged may share its list with a cached parse.
	merged.Storage.Files = append([]ign3types.File(nil), merged.Storage.Files...)
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

// IsControllerGenerated reports whether mc was written by a controller rather than a user.
func IsControllerGenerated(mc *mcfgv1.MachineConfig) bool {
	_, ok := mc.Annotations[wellknown.GeneratedByControllerVersionAnnotation]
	return ok
}

// IgnitionOf parses the Ignition of a (rendered) MachineConfig spec.
func IgnitionOf(spec *mcfgv1.MachineConfigSpec) (ign3types.Config, error) {
	return ParseIgnition(spec.Config.Raw)
}
