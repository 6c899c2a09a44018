package rollout

import (
	"sort"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"

	"github.com/imagemode/imagemode/machineos/osbuild"
)

// Layering is what makes a pool layered: its MachineOSConfig, and the MachineOSBuild for the pool's current
// rendered config (nil while there is none).
type Layering struct {
	Config *mcfgv1.MachineOSConfig
	Build  *mcfgv1.MachineOSBuild
}

// LayeringFor finds pool's MachineOSConfig (the first by name whose spec.machineConfigPool names the pool)
// and the build for the pool's current rendered config among builds: the one the MachineOSConfig's
// current-machine-os-build annotation names, if it is for that config; otherwise a build of the
// MachineOSConfig for that config, preferring the one whose image the MachineOSConfig names, then the
// newest. It returns nil when the pool has no MachineOSConfig (the pool is not layered). It never changes
// the annotation: the build service owns the MachineOSConfig.
func LayeringFor(pool *mcfgv1.MachineConfigPool, configs []*mcfgv1.MachineOSConfig, builds []*mcfgv1.MachineOSBuild) *Layering {
	var mosc *mcfgv1.MachineOSConfig
	for _, c := range configs {
		if c.Spec.MachineConfigPool.Name == pool.Name && (mosc == nil || c.Name < mosc.Name) {
			mosc = c
		}
	}
	if mosc == nil {
		return nil
	}
	l := &Layering{Config: mosc}
	rendered := pool.Spec.Configuration.Name
	current := osbuild.CurrentName(mosc)
	var matching []*mcfgv1.MachineOSBuild
	for _, b := range builds {
		if b.Spec.MachineOSConfig.Name != mosc.Name || b.Spec.MachineConfig.Name != rendered || rendered == "" {
			continue
		}
		if b.Name == current {
			l.Build = b
			return l
		}
		matching = append(matching, b)
	}
	if len(matching) == 0 {
		return l
	}
	image := string(mosc.Status.CurrentImagePullSpec)
	sort.Slice(matching, func(i, j int) bool {
		bi, bj := matching[i], matching[j]
		ui := image != "" && string(bi.Status.DigestedImagePushSpec) == image
		uj := image != "" && string(bj.Status.DigestedImagePushSpec) == image
		if ui != uj {
			return ui
		}
		if !bi.CreationTimestamp.Equal(&bj.CreationTimestamp) {
			return bj.CreationTimestamp.Before(&bi.CreationTimestamp)
		}
		return bi.Name < bj.Name
	})
	l.Build = matching[0]
	return l
}

// Image is the MachineOSConfig's current image (status.currentImagePullSpec), empty before the first build.
func (l *Layering) Image() string { return string(l.Config.Status.CurrentImagePullSpec) }

// BuildState is the state of the build for the pool's config (Initial when there is none; see HasBuild).
func (l *Layering) BuildState() osbuild.State {
	if l.Build == nil {
		return osbuild.StateInitial
	}
	return osbuild.StateOf(l.Build)
}

// HasBuild reports whether a build exists for the pool's current rendered config.
func (l *Layering) HasBuild() bool { return l.Build != nil }

// Ready reports whether nodes may be moved: the build for the pool's config succeeded and the
// MachineOSConfig names its image.
func (l *Layering) Ready() bool {
	return l.Build != nil && l.BuildState() == osbuild.StateSucceeded && l.Image() != "" &&
		l.Image() == string(l.Build.Status.DigestedImagePushSpec)
}

// TargetFor is what pool's nodes count as done against: the pool's config and the MachineOSConfig's image,
// when a build for the pool's config exists (a node cannot be done at a config no build was made for). l may
// be nil: a pool without layering.
func (l *Layering) TargetFor(pool *mcfgv1.MachineConfigPool) Target {
	t := Target{Config: pool.Spec.Configuration.Name}
	if l == nil {
		return t
	}
	t.Layered = true
	if l.Build != nil {
		t.Image = l.Image()
	}
	return t
}
