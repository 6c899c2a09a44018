package rollout

import (
	"encoding/json"
	"fmt"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"

	rolloutsv1 "github.com/imagemode/imagemode/api/rollouts/v1alpha1"
	"github.com/imagemode/imagemode/internal/wellknown"
)

// NodePatch is the JSON merge patch of one node change: only the rollout's keys. The desired annotations
// (and, under a RolloutPolicy with health checks, the checks) are set (desiredImage deleted with null when it goes); when the UpdateInProgress taint changes, the whole
// taint list is sent (a merge patch replaces lists) with the resourceVersion the decision was made on, so a
// concurrent taint change by someone else makes the patch fail with a conflict instead of being lost.
func NodePatch(c NodeChange) ([]byte, error) {
	meta := map[string]any{}
	ann := map[string]any{}
	for _, k := range []string{wellknown.DesiredConfigAnnotation, wellknown.DesiredImageAnnotation, rolloutsv1.HealthChecksAnnotation} {
		before, had := c.Node.Annotations[k]
		after, has := c.Updated.Annotations[k]
		switch {
		case has && (!had || before != after):
			ann[k] = after
		case had && !has:
			ann[k] = nil
		}
	}
	if len(ann) > 0 {
		meta["annotations"] = ann
	}
	patch := map[string]any{}
	if c.TaintsChanged {
		taints := c.Updated.Spec.Taints
		if taints == nil {
			taints = []corev1.Taint{}
		}
		patch["spec"] = map[string]any{"taints": taints}
		meta["resourceVersion"] = c.Node.ResourceVersion
	}
	if len(meta) > 0 {
		patch["metadata"] = meta
	}
	raw, err := json.Marshal(patch)
	if err != nil {
		return nil, fmt.Errorf("encoding the patch of node %s: %w", c.Node.Name, err)
	}
	return raw, nil
}

// MachineConfigNodeSpecPatch is the JSON merge patch that sets a MachineConfigNode's spec.
func MachineConfigNodeSpecPatch(spec mcfgv1.MachineConfigNodeSpec) ([]byte, error) {
	raw, err := json.Marshal(map[string]any{"spec": spec})
	if err != nil {
		return nil, fmt.Errorf("encoding the patch of MachineConfigNode %s: %w", spec.Node.Name, err)
	}
	return raw, nil
}
