package registry

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos/osbuild"
)

// DefaultRetainBuilds is how many successful builds of a MachineOSConfig are kept besides its current one
// when neither the caller nor the RetainBuildsAnnotation says otherwise.
const DefaultRetainBuilds = 3

// RetainBuilds returns how many successful builds to keep for mosc: the value of its
// RetainBuildsAnnotation when present, else def (DefaultRetainBuilds when def is negative). An annotation
// that is not a non-negative integer is an error naming the object and the annotation.
func RetainBuilds(mosc *mcfgv1.MachineOSConfig, def int) (int, error) {
	if def < 0 {
		def = DefaultRetainBuilds
	}
	raw, ok := mosc.Annotations[wellknown.RetainBuildsAnnotation]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(raw))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("reading annotation %s of MachineOSConfig %q: %q is not a non-negative integer",
			wellknown.RetainBuildsAnnotation, mosc.Name, raw)
	}
	return n, nil
}

// SelectForRetention splits the builds of mosc (by spec.machineOSConfig.name, or the machine-os-config
// label) into those to keep and those whose objects and images may be deleted; builds of other
// MachineOSConfigs and builds already being deleted are in neither list. It keeps:
//   - the current build (the current-machine-os-build annotation and status.machineOSBuild);
//   - every build that has not finished (initial, prepared or building): it is never selected;
//   - the newest `keep` other successful builds, newest by buildEnd, then creationTimestamp, then name.
//
// Other successful builds and failed or interrupted builds are selected for deletion. keep is the
// default count, overridden by the RetainBuildsAnnotation (see RetainBuilds). Both lists are sorted by
// name. The caller still checks each image with InUse before deleting it.
func SelectForRetention(builds []*mcfgv1.MachineOSBuild, mosc *mcfgv1.MachineOSConfig, keep int) (keepNames, deleteNames []string, err error) {
	keep, err = RetainBuilds(mosc, keep)
	if err != nil {
		return nil, nil, err
	}
	current := map[string]bool{}
	if name := osbuild.CurrentName(mosc); name != "" {
		current[name] = true
	}
	if ref := mosc.Status.MachineOSBuild; ref != nil && ref.Name != "" {
		current[ref.Name] = true
	}
	var succeeded []*mcfgv1.MachineOSBuild
	for _, b := range builds {
		if !belongsTo(b, mosc) || b.DeletionTimestamp != nil {
			continue
		}
		state := osbuild.StateOf(b)
		switch {
		case current[b.Name] || !state.IsTerminal():
			keepNames = append(keepNames, b.Name)
		case state == osbuild.StateSucceeded:
			succeeded = append(succeeded, b)
		default:
			deleteNames = append(deleteNames, b.Name)
		}
	}
	sort.SliceStable(succeeded, func(i, j int) bool { return newer(succeeded[i], succeeded[j]) })
	for i, b := range succeeded {
		if i < keep {
			keepNames = append(keepNames, b.Name)
		} else {
			deleteNames = append(deleteNames, b.Name)
		}
	}
	sort.Strings(keepNames)
	sort.Strings(deleteNames)
	return keepNames, deleteNames, nil
}

func belongsTo(b *mcfgv1.MachineOSBuild, mosc *mcfgv1.MachineOSConfig) bool {
	if b.Spec.MachineOSConfig.Name != "" {
		return b.Spec.MachineOSConfig.Name == mosc.Name
	}
	return b.Labels[wellknown.MachineOSConfigLabel] == mosc.Name
}

// newer orders builds newest first: by buildEnd (a missing one is oldest), then creationTimestamp, then
// name (ascending, only to be deterministic).
func newer(a, b *mcfgv1.MachineOSBuild) bool {
	if c := compareTime(a.Status.BuildEnd, b.Status.BuildEnd); c != 0 {
		return c > 0
	}
	ac, bc := a.CreationTimestamp, b.CreationTimestamp
	if c := compareTime(&ac, &bc); c != 0 {
		return c > 0
	}
	return a.Name < b.Name
}

func compareTime(a, b *metav1.Time) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	case a.Time.After(b.Time):
		return 1
	case b.Time.After(a.Time):
		return -1
	}
	return 0
}
