package renderer

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/render/machineconfig"
)

// MaxRenderedSize is the largest rendered MachineConfig (as JSON) the controller writes, as in the reference.
const MaxRenderedSize = 1572864

// Reasons of the RenderDegraded condition (and of the Warning events that go with it).
const (
	ReasonRendered              = "Rendered"
	ReasonSelectingAll          = "SelectingAll"
	ReasonNoSelector            = "NoMachineConfigSelector"
	ReasonNoMachineConfigs      = "NoMachineConfigs"
	ReasonMissingControllerConf = "MissingControllerConfig"
	ReasonInvalidMachineConfig  = "InvalidMachineConfig"
	ReasonUnreconcilable        = "Unreconcilable"
	ReasonTooLarge              = "RenderedConfigTooLarge"
)

// EventRenderedConfigGenerated is the reason of the event recorded when a new rendered config is written.
const EventRenderedConfigGenerated = "RenderedConfigGenerated"

// Inputs is everything a render decision depends on.
type Inputs struct {
	Pool *mcfgv1.MachineConfigPool
	// Configs are all MachineConfigs in the cluster; Render selects the pool's.
	Configs []*mcfgv1.MachineConfig
	// ControllerConfig is the cluster's ControllerConfig, nil when missing.
	ControllerConfig *mcfgv1.ControllerConfig
	// Current is the rendered config the pool's spec.configuration names, nil when none exists.
	Current *mcfgv1.MachineConfig
	// Version is this controller's version, written to generated-by-controller-version.
	Version string
	// Cache, when set, keeps parsed configs between renders (a memo: the outcome is the same without it).
	Cache *machineconfig.ParseCache
}

// Outcome is the result of a render: a rendered config and its sources, or a failure to report.
type Outcome struct {
	// Rendered is the rendered MachineConfig to create (no owner reference yet); nil on failure.
	Rendered *mcfgv1.MachineConfig
	// Sources are the pool's MachineConfigs in merge order, for spec.configuration.source.
	Sources []corev1.ObjectReference
	// Failure says why the pool could not be rendered; nil on success.
	Failure *Failure
}

// Failure is a render failure, reported as RenderDegraded=True.
type Failure struct {
	Reason  string
	Message string
}

func fail(pool, reason, format string, args ...any) Outcome {
	return Outcome{Failure: &Failure{Reason: reason,
		Message: fmt.Sprintf("Failed to render configuration for pool %s: %s", pool, fmt.Sprintf(format, args...))}}
}

// Render decides the pool's rendered config.
func Render(in Inputs) Outcome {
	pool := in.Pool.Name
	sel := in.Pool.Spec.MachineConfigSelector
	switch {
	case sel == nil:
		return fail(pool, ReasonNoSelector, "spec.machineConfigSelector is not set, so the pool selects no MachineConfigs")
	case len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0:
		return fail(pool, ReasonSelectingAll, "spec.machineConfigSelector is empty; an empty selector would select every MachineConfig, so it selects none")
	}
	selector, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return fail(pool, ReasonNoSelector, "spec.machineConfigSelector: %v", err)
	}
	if in.ControllerConfig == nil {
		return fail(pool, ReasonMissingControllerConf, "ControllerConfig %s not found; it provides the base OS image", wellknown.ControllerConfigName)
	}
	var selected []*mcfgv1.MachineConfig
	for _, mc := range in.Configs {
		if mc.DeletionTimestamp == nil && selector.Matches(labels.Set(mc.Labels)) {
			selected = append(selected, mc)
		}
	}
	if len(selected) == 0 {
		return fail(pool, ReasonNoMachineConfigs, "no MachineConfigs found matching selector %s", selector)
	}
	parsed := parseAll(in.Cache, selected)
	for i, mc := range selected {
		if len(parsed[i].Invalid) > 0 {
			return fail(pool, ReasonInvalidMachineConfig, "machineconfig %q: %v", mc.Name, parsed[i].Invalid.ToAggregate())
		}
	}
	base := machineconfig.Base{
		OSImageURL:                     in.ControllerConfig.Spec.BaseOSContainerImage,
		BaseOSExtensionsContainerImage: in.ControllerConfig.Spec.BaseOSExtensionsContainerImage,
	}
	spec, err := machineconfig.MergeParsed(parsed, base)
	if err != nil {
		return fail(pool, ReasonInvalidMachineConfig, "%v", err)
	}
	if in.Current != nil {
		if err := machineconfig.Reconcilable(&in.Current.Spec, spec); err != nil {
			return fail(pool, ReasonUnreconcilable, "reconciliation failed between current config %s and %s: %v",
				in.Current.Name, culprit(in.Current, parsed, base), err)
		}
	}
	name, err := machineconfig.RenderedName(pool, spec)
	if err != nil {
		return fail(pool, ReasonInvalidMachineConfig, "%v", err)
	}
	rendered := &mcfgv1.MachineConfig{
		TypeMeta: metav1.TypeMeta{APIVersion: mcfgv1.GroupVersion.String(), Kind: "MachineConfig"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{
			wellknown.GeneratedByControllerVersionAnnotation: in.Version,
		}},
		Spec: *spec,
	}
	if v := releaseVersion(in.ControllerConfig); v != "" {
		rendered.Annotations[wellknown.ReleaseImageVersionAnnotation] = v
	}
	if spec.OSImageURL != base.OSImageURL {
		rendered.Annotations[wellknown.OSImageURLOverriddenAnnotation] = "true"
	}
	raw, err := json.Marshal(rendered)
	if err != nil {
		return fail(pool, ReasonInvalidMachineConfig, "encoding rendered config: %v", err)
	}
	if len(raw) > MaxRenderedSize {
		return fail(pool, ReasonTooLarge, "rendered config is %d bytes, more than the %d allowed", len(raw), MaxRenderedSize)
	}
	sorted, _ := machineconfig.SortForMerge(selected) // cannot fail: Merge succeeded on the same configs
	sources := make([]corev1.ObjectReference, 0, len(sorted))
	for _, mc := range sorted {
		sources = append(sources, corev1.ObjectReference{APIVersion: mcfgv1.GroupVersion.String(), Kind: "MachineConfig", Name: mc.Name})
	}
	return Outcome{Rendered: rendered, Sources: sources}
}

// culprit names the configs whose presence makes the new render unreconcilable with current: leaving each
// out in turn, those without which the render becomes reconcilable. When none alone is to blame (a config
// was removed, or several interact) it says so.
func culprit(current *mcfgv1.MachineConfig, selected []*machineconfig.Parsed, base machineconfig.Base) string {
	var names []string
	for i := range selected {
		rest := make([]*machineconfig.Parsed, 0, len(selected)-1)
		rest = append(append(rest, selected[:i]...), selected[i+1:]...)
		if len(rest) == 0 {
			continue
		}
		spec, err := machineconfig.MergeParsed(rest, base)
		if err != nil {
			continue
		}
		if machineconfig.Reconcilable(&current.Spec, spec) == nil {
			names = append(names, selected[i].Config.Name)
		}
	}
	if len(names) == 0 {
		return "the pool's configs (no single config introduces the change; was one removed?)"
	}
	return "config " + strings.Join(names, ", ")
}

func releaseVersion(cc *mcfgv1.ControllerConfig) string {
	if v := cc.Annotations[wellknown.ReleaseImageVersionAnnotation]; v != "" {
		return v
	}
	return cc.Spec.ReleaseImage
}

// parseAll parses (through cache, which may be nil) every config, on as many goroutines as there are CPUs:
// the configs are independent, and a cold render is mostly Ignition's validation of each.
func parseAll(cache *machineconfig.ParseCache, configs []*mcfgv1.MachineConfig) []*machineconfig.Parsed {
	parsed := make([]*machineconfig.Parsed, len(configs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(configs)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(configs); i = int(next.Add(1) - 1) {
				parsed[i] = cache.Parse(configs[i])
			}
		})
	}
	wg.Wait()
	return parsed
}
