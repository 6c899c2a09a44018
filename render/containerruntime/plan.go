package containerruntime

import mcfgv1 "github.com/openshift/api/machineconfiguration/v1"

// ReleasePullSpec is the release payload pull spec the controller checks blocking against
// (registries.Inputs.ReleaseImage) for a ControllerConfig; empty for a nil one. `imagemode plan` fills its
// registries.Inputs with it, as the controller does.
func ReleasePullSpec(cc *mcfgv1.ControllerConfig) string {
	if cc == nil {
		return ""
	}
	return releasePullSpec(cc)
}
