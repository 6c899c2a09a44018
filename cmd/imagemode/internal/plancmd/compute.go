package plancmd

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	operatorv1 "github.com/openshift/api/operator/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/imagemode/imagemode/daemon"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos"
	"github.com/imagemode/imagemode/machineos/osbuild"
	"github.com/imagemode/imagemode/render/containerruntime"
	"github.com/imagemode/imagemode/render/disruption"
	"github.com/imagemode/imagemode/render/machineconfig"
	"github.com/imagemode/imagemode/render/registries"
	"github.com/imagemode/imagemode/render/renderer"
	"github.com/imagemode/imagemode/render/rollout"
)

// Plan is what a change will do; -o json|yaml prints it as is.
type Plan struct {
	Pools []PoolPlan `json:"pools"`
	// RenderedConfigs are the new rendered configs of the pools (with --offline), in pool order.
	RenderedConfigs []*mcfgv1.MachineConfig `json:"renderedConfigs,omitempty"`
}

// PoolPlan is what happens to one pool.
type PoolPlan struct {
	Pool string `json:"pool"`
	// CurrentConfig is the pool's spec.configuration.name (empty before its first render).
	CurrentConfig string `json:"currentConfig,omitempty"`
	// NewConfig is the rendered config after the change (empty when it cannot be rendered).
	NewConfig string `json:"newConfig,omitempty"`
	// ConfigChanged is set when NewConfig differs from CurrentConfig.
	ConfigChanged bool `json:"configChanged"`
	// RenderError is why the pool cannot be rendered after the change (RenderDegraded's message).
	RenderError string `json:"renderError,omitempty"`
	// Layering is what happens to the pool's layered image.
	Layering Layering `json:"layering"`
	// Paused is set when the pool is paused: its nodes wait until it is unpaused.
	Paused bool `json:"paused,omitempty"`
	// Affected is set when the change does something to the pool.
	Affected bool `json:"affected"`
	// Nodes are the nodes whose primary pool this is after the change, by name.
	Nodes []NodePlan `json:"nodes"`
}

// Layering states.
const (
	LayeringNone      = "not layered"
	LayeringRebuild   = "rebuild needed"
	LayeringReused    = "image reused (layer-only change)"
	LayeringBuilt     = "image reused (built before)"
	LayeringUnchanged = "image unchanged"
	LayeringWaiting   = "waiting"
)

// Layering is what happens to a pool's layered image, as machineos.Decide decides it.
type Layering struct {
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	// MachineOSConfig is the pool's MachineOSConfig after the change (empty when not layered).
	MachineOSConfig string `json:"machineOSConfig,omitempty"`
	// Build is the MachineOSBuild for the new config.
	Build string `json:"build,omitempty"`
	// Image is the image the nodes will run when known (empty when a build must make it, or not layered).
	Image string `json:"image,omitempty"`
}

// NodePlan is what happens to one node: the daemon's post-change actions in its order.
type NodePlan struct {
	Node string `json:"node"`
	// CurrentConfig is the node's currentConfig annotation.
	CurrentConfig string `json:"currentConfig,omitempty"`
	// Actions are daemon.Action strings (Reboot, Drain, DaemonReload, Reload <unit>, Restart <unit>, None).
	Actions []string `json:"actions,omitempty"`
	Drain   bool     `json:"drain"`
	// Error is why the disruption cannot be predicted (e.g. unknown current config).
	Error string `json:"error,omitempty"`
}

// Options tune Compute.
type Options struct {
	// Rendered adds the new rendered configs to the plan.
	Rendered bool
	// Version is the controller version written on generated configs (it does not change any name).
	Version string
}

// UnknownCurrentConfig is a node's error when its currentConfig annotation is missing or names no
// MachineConfig.
const UnknownCurrentConfig = "unknown current config"

// newImagePlaceholder stands for an image a build has yet to make: any value differing from the node's.
const newImagePlaceholder = "<image to be built>"

// Compute plans change against the snapshot before. Every pool is in the plan, with Affected set for those
// the change does something to.
func Compute(before *State, change Change, opts Options) (*Plan, error) {
	after, err := change.Apply(before)
	if err != nil {
		return nil, err
	}
	if touchesRegistries(change) {
		if err := regenerateRegistries(after, change, opts.Version); err != nil {
			return nil, err
		}
	}
	policies := disruption.DefaultClusterPolicies()
	if after.MachineConfiguration != nil {
		policies = disruption.MergeClusterPolicies(after.MachineConfiguration.Spec.NodeDisruptionPolicy)
	}
	named := map[string]bool{}
	for _, d := range change.Documents {
		switch o := d.Object.(type) {
		case *mcfgv1.MachineConfigPool:
			named[o.Name] = true
		case *mcfgv1.MachineOSConfig:
			named[o.Spec.MachineConfigPool.Name] = true
			if old := find(before.MOSCs, o.Name); old != nil {
				named[old.Spec.MachineConfigPool.Name] = true
			}
		}
	}
	poolSet := rollout.NewPoolSet(after.Pools)
	plan := &Plan{Pools: []PoolPlan{}}
	pools := append([]*mcfgv1.MachineConfigPool(nil), after.Pools...)
	sort.Slice(pools, func(i, j int) bool { return pools[i].Name < pools[j].Name })
	for _, pool := range pools {
		pp, rendered := planPool(before, after, pool, poolSet, policies, opts)
		pp.Affected = pp.Affected || named[pool.Name]
		plan.Pools = append(plan.Pools, pp)
		if opts.Rendered && rendered != nil && pp.ConfigChanged {
			plan.RenderedConfigs = append(plan.RenderedConfigs, rendered)
		}
	}
	return plan, nil
}

// touchesRegistries reports whether the change can change a generated registries config.
func touchesRegistries(c Change) bool {
	for _, d := range c.Documents {
		switch d.Kind() {
		case KindICSP, KindIDMS, KindITMS, KindImage, KindMachineConfigPool:
			return true
		}
	}
	return false
}

// regenerateRegistries puts in s the generated registries config of every built-in pool as the
// container-runtime-config controller would write it (containerruntime.Desired).
func regenerateRegistries(s *State, c Change, version string) error {
	in := registries.Inputs{Image: s.Image, ReleaseImage: containerruntime.ReleasePullSpec(s.ControllerConfig)}
	for _, o := range s.ICSPs {
		in.ICSPs = append(in.ICSPs, *o)
	}
	for _, o := range s.IDMSs {
		in.IDMSs = append(in.IDMSs, *o)
	}
	for _, o := range s.ITMSs {
		in.ITMSs = append(in.ITMSs, *o)
	}
	for _, pool := range s.Pools {
		if !containerruntime.IsBuiltInPool(pool) {
			continue
		}
		desired, err := containerruntime.Desired(pool.Name, in, version)
		var invalid *containerruntime.InvalidInputsError
		switch {
		case errors.As(err, &invalid):
			return registriesError(c, invalid)
		case err != nil:
			return err
		case desired == nil:
			s.Configs, _ = without(s.Configs, containerruntime.GeneratedName(pool.Name))
		default:
			s.Configs = replace(s.Configs, desired)
		}
	}
	return nil
}

// planPool plans one pool; it returns the new rendered config (nil when the pool cannot be rendered).
func planPool(before, after *State, pool *mcfgv1.MachineConfigPool, poolSet *rollout.PoolSet,
	policies operatorv1.NodeDisruptionPolicyClusterStatus, opts Options) (PoolPlan, *mcfgv1.MachineConfig) {
	pp := PoolPlan{Pool: pool.Name, CurrentConfig: pool.Spec.Configuration.Name, Paused: pool.Spec.Paused, Nodes: []NodePlan{}}
	out := render(after, pool, opts.Version)
	if out.Failure != nil {
		pp.RenderError = out.Failure.Message
		pp.Affected = true // a pool that cannot be rendered is always shown
	} else {
		pp.NewConfig = out.Rendered.Name
		pp.ConfigChanged = pp.NewConfig != pp.CurrentConfig
	}
	newImage := ""
	pp.Layering, newImage = planLayering(before, after, pool, out)
	if pp.ConfigChanged || pp.Layering.State == LayeringRebuild || newImage != currentImage(before, pool.Name) {
		pp.Affected = true
	}

	nodes, multi := rollout.NodesForPool(pool.Name, after.Nodes, poolSet)
	for _, n := range nodes {
		pp.Nodes = append(pp.Nodes, planNode(before, n, out.Rendered, newImage, policies))
	}
	for _, m := range multi {
		pp.Nodes = append(pp.Nodes, NodePlan{Node: m.Node, Error: m.Error()})
	}
	sort.Slice(pp.Nodes, func(i, j int) bool { return pp.Nodes[i].Node < pp.Nodes[j].Node })
	return pp, out.Rendered
}

// render is the render controller's decision for pool in s.
func render(s *State, pool *mcfgv1.MachineConfigPool, version string) renderer.Outcome {
	in := renderer.Inputs{Pool: pool, Configs: s.Configs, ControllerConfig: s.ControllerConfig, Version: version}
	if name := pool.Spec.Configuration.Name; name != "" {
		in.Current = find(s.Configs, name)
	}
	return renderer.Render(in)
}

// moscFor is the pool's MachineOSConfig in s (the first by name, as the rollout picks it), nil if none.
func moscFor(s *State, pool string) *mcfgv1.MachineOSConfig {
	var mosc *mcfgv1.MachineOSConfig
	for _, m := range s.MOSCs {
		if m.Spec.MachineConfigPool.Name == pool && (mosc == nil || m.Name < mosc.Name) {
			mosc = m
		}
	}
	return mosc
}

// currentImage is the image the pool's nodes are moved to today: its MachineOSConfig's current image.
func currentImage(s *State, pool string) string {
	if m := moscFor(s, pool); m != nil {
		return string(m.Status.CurrentImagePullSpec)
	}
	return ""
}

// planLayering asks machineos.Decide what the pool's MachineOSConfig does at the new config, and returns it
// with the image the nodes will be moved to ("" for the base image, newImagePlaceholder for one to build).
func planLayering(before, after *State, pool *mcfgv1.MachineConfigPool, out renderer.Outcome) (Layering, string) {
	mosc := moscFor(after, pool.Name)
	if mosc == nil {
		l := Layering{State: LayeringNone, Reason: "no MachineOSConfig for the pool"}
		if old := moscFor(before, pool.Name); old != nil {
			l.Reason = fmt.Sprintf("MachineOSConfig %s removed: the nodes return to the base image", old.Name)
		}
		return l, ""
	}
	l := Layering{MachineOSConfig: mosc.Name}
	if out.Rendered == nil {
		return Layering{State: LayeringWaiting, MachineOSConfig: mosc.Name, Reason: "the pool cannot be rendered"}, string(mosc.Status.CurrentImagePullSpec)
	}
	next := pool.DeepCopy()
	next.Spec.Configuration = mcfgv1.MachineConfigPoolStatusConfiguration{
		ObjectReference: corev1.ObjectReference{Name: out.Rendered.Name}, Source: out.Sources}
	in := machineos.ConfigInputs{MOSC: mosc, Others: after.MOSCs, Pool: next, Rendered: out.Rendered}
	var current *mcfgv1.MachineOSBuild
	for _, b := range after.MOSBs {
		if b.Labels[wellknown.MachineOSConfigLabel] != mosc.Name || !controlledBy(b, mosc) {
			continue
		}
		in.Builds = append(in.Builds, b)
		if b.Name == osbuild.CurrentName(mosc) {
			current = b
			in.CurrentRendered = find(after.Configs, b.Spec.MachineConfig.Name)
		}
	}
	d := machineos.Decide(in)
	l.Build = d.Build
	switch {
	case d.Action == machineos.ActionCreate || d.Action == machineos.ActionDelete:
		l.State, l.Reason = LayeringRebuild, rebuildReason(mosc, current, in.CurrentRendered, out.Rendered)
		return l, newImagePlaceholder
	case d.Action == machineos.ActionReuse:
		l.State, l.Image = LayeringReused, d.Image
		l.Reason = "reuses the image of " + d.ReuseFrom.Name
		return l, d.Image
	case d.Image != "" && d.Image == string(mosc.Status.CurrentImagePullSpec):
		l.State, l.Image = LayeringUnchanged, d.Image
		return l, d.Image
	case d.Image != "":
		l.State, l.Image = LayeringBuilt, d.Image
		l.Reason = fmt.Sprintf("%s already built the image for this config", d.Build)
		return l, d.Image
	}
	l.State, l.Reason = LayeringWaiting, d.Ready.Message
	if d.Build != "" {
		return l, newImagePlaceholder // a build for the new config exists, not succeeded yet
	}
	return l, string(mosc.Status.CurrentImagePullSpec)
}

// controlledBy is metav1.IsControlledBy, or, for a snapshot without uids, the build's spec naming mosc.
func controlledBy(b *mcfgv1.MachineOSBuild, mosc *mcfgv1.MachineOSConfig) bool {
	if mosc.UID == "" {
		return b.Spec.MachineOSConfig.Name == mosc.Name
	}
	return metav1.IsControlledBy(b, mosc)
}

// rebuildReason says why Decide builds anew: what changed since the current build.
func rebuildReason(mosc *mcfgv1.MachineOSConfig, current *mcfgv1.MachineOSBuild, currentRendered, rendered *mcfgv1.MachineConfig) string {
	if _, ok := mosc.Annotations[wellknown.RebuildAnnotation]; ok {
		return "rebuild requested (" + wellknown.RebuildAnnotation + " annotation)"
	}
	if current == nil {
		return fmt.Sprintf("no image built yet for MachineOSConfig %s", mosc.Name)
	}
	var why []string
	if current.Annotations[machineos.SpecHashAnnotation] != machineos.SpecHash(mosc.Spec) {
		why = append(why, "MachineOSConfig spec changed")
	}
	if currentRendered != nil && machineos.RequiresRebuild(currentRendered, rendered) {
		o, n := currentRendered.Spec, rendered.Spec
		for _, f := range []struct {
			name    string
			changed bool
		}{
			{"osImageURL", o.OSImageURL != n.OSImageURL},
			{"baseOSExtensionsContainerImage", o.BaseOSExtensionsContainerImage != n.BaseOSExtensionsContainerImage},
			{"kernelType", daemon.CanonicalKernelType(o.KernelType) != daemon.CanonicalKernelType(n.KernelType)},
			{"extensions", strings.Join(o.Extensions, ",") != strings.Join(n.Extensions, ",")},
		} {
			if f.changed {
				why = append(why, f.name+" changed")
			}
		}
	}
	if osbuild.StateOf(current) != osbuild.StateSucceeded {
		why = append(why, fmt.Sprintf("current build %s has not succeeded", current.Name))
	}
	if len(why) == 0 {
		why = append(why, fmt.Sprintf("the config of current build %s is gone", current.Name))
	}
	return strings.Join(why, ", ")
}

// planNode is what the daemon will do on node moving from its current config and image to rendered with
// image, as the daemon's planner decides it (daemon.Diff, daemon.Actions, daemon.NeedsDrain).
func planNode(before *State, node *corev1.Node, rendered *mcfgv1.MachineConfig, image string,
	policies operatorv1.NodeDisruptionPolicyClusterStatus) NodePlan {
	np := NodePlan{Node: node.Name, CurrentConfig: node.Annotations[wellknown.CurrentConfigAnnotation]}
	current := find(before.Configs, np.CurrentConfig)
	switch {
	case np.CurrentConfig == "" || current == nil:
		np.Error = UnknownCurrentConfig
		return np
	case rendered == nil:
		np.Error = "the pool cannot be rendered"
		return np
	}
	oldMC := withImage(current, node.Annotations[wellknown.CurrentImageAnnotation])
	newMC := withImage(rendered, image)
	if err := machineconfig.Reconcilable(&oldMC.Spec, &newMC.Spec); err != nil {
		np.Error = fmt.Sprintf("unreconcilable: %v", err)
		return np
	}
	diff, err := daemon.Diff(oldMC, newMC)
	if err != nil {
		np.Error = err.Error()
		return np
	}
	oldReg, _, _ := daemon.ConfigFile(oldMC, daemon.RegistriesConfPath)
	newReg, _, _ := daemon.ConfigFile(newMC, daemon.RegistriesConfPath)
	actions := daemon.Actions(diff, policies, oldReg, newReg)
	for _, a := range actions {
		np.Actions = append(np.Actions, a.String())
	}
	np.Drain = daemon.NeedsDrain(actions)
	return np
}

// withImage is a rendered config as a node of a layered pool runs it: with the layered image as its OS image
// (as the daemon compares them).
func withImage(mc *mcfgv1.MachineConfig, image string) *mcfgv1.MachineConfig {
	if image == "" {
		return mc
	}
	out := mc.DeepCopy()
	out.Spec.OSImageURL = image
	return out
}
