package rollout

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/imagemode/imagemode/internal/wellknown"
)

// Node predicates, read from the node's annotations (written by this controller and the daemon) and its
// conditions. They match the reference's LayeredNodeState.

// IsNodeReady reports whether node can take workloads: its Ready condition is True, DiskPressure and
// NetworkUnavailable (when reported) are False, and it is schedulable. Unlike the reference, a node that has
// never reported a Ready condition is not ready.
func IsNodeReady(node *corev1.Node) bool {
	if node.Spec.Unschedulable {
		return false
	}
	ready := false
	for _, c := range node.Status.Conditions {
		switch c.Type {
		case corev1.NodeReady:
			ready = c.Status == corev1.ConditionTrue
		case corev1.NodeDiskPressure, corev1.NodeNetworkUnavailable:
			if c.Status != corev1.ConditionFalse {
				return false
			}
		}
	}
	return ready
}

// IsNodeDone reports whether the daemon finished its last target: currentConfig and desiredConfig are set
// and equal, the image annotations are done (both absent, or both set and equal), and the state is Done.
func IsNodeDone(node *corev1.Node) bool {
	a := node.Annotations
	current, desired := a[wellknown.CurrentConfigAnnotation], a[wellknown.DesiredConfigAnnotation]
	if current == "" || desired == "" || current != desired {
		return false
	}
	return isImageDone(node) && a[wellknown.StateAnnotation] == wellknown.NodeStateDone
}

// isImageDone: no image annotation at all is done (not layered); otherwise both must be set and equal.
func isImageDone(node *corev1.Node) bool {
	desired, desiredOK := node.Annotations[wellknown.DesiredImageAnnotation]
	current, currentOK := node.Annotations[wellknown.CurrentImageAnnotation]
	if !desiredOK && !currentOK {
		return true
	}
	return desired != "" && current != "" && desired == current
}

// IsNodeMCDFailing reports whether the daemon failed to reach the node's desired config: the configs differ
// and the state is Degraded or Unreconcilable. Such a node may be retargeted.
func IsNodeMCDFailing(node *corev1.Node) bool {
	a := node.Annotations
	if a[wellknown.CurrentConfigAnnotation] == a[wellknown.DesiredConfigAnnotation] {
		return false
	}
	s := a[wellknown.StateAnnotation]
	return s == wellknown.NodeStateDegraded || s == wellknown.NodeStateUnreconcilable
}

// IsUnavailableForUpdate reports whether node uses up the pool's maxUnavailable: it is not ready, or it is
// working towards (or has not started on) its target. A done node is available; so is a failing one, which
// may be retargeted.
func IsUnavailableForUpdate(node *corev1.Node) bool {
	if !IsNodeReady(node) {
		return true
	}
	if IsNodeDone(node) {
		return false
	}
	return !IsNodeMCDFailing(node)
}

// IsNodeDegraded reports whether the daemon reports the node degraded: it has a desired config and its state
// is Degraded or Unreconcilable.
func IsNodeDegraded(node *corev1.Node) bool {
	a := node.Annotations
	if a[wellknown.DesiredConfigAnnotation] == "" {
		return false
	}
	s := a[wellknown.StateAnnotation]
	return s == wellknown.NodeStateDegraded || s == wellknown.NodeStateUnreconcilable
}

// Target is what a pool's nodes should run: the pool's rendered config and, for a layered pool, the image
// its MachineOSConfig names.
type Target struct {
	// Config is the rendered MachineConfig.
	Config string
	// Layered is set for a pool with a MachineOSConfig.
	Layered bool
	// Image is the layered image (MachineOSConfig status.currentImagePullSpec); empty when not layered, or
	// when the pool's build is not ready (then nothing is targeted and no node is done).
	Image string
}

// IsTargeting reports whether node's desired annotations already name target: for a layered target, the
// config and the image; otherwise the config, and no desiredImage annotation (a node leaving a layered pool
// still has one, and must be retargeted to drop it).
func IsTargeting(node *corev1.Node, t Target) bool {
	a := node.Annotations
	if a[wellknown.DesiredConfigAnnotation] != t.Config {
		return false
	}
	desiredImage, hasImage := a[wellknown.DesiredImageAnnotation]
	if t.Layered {
		return t.Image != "" && desiredImage == t.Image
	}
	return !hasImage
}

// NeedsTargeting reports whether node is a candidate for an update to t (the reference's
// CheckNodeCandidacyForUpdate).
func NeedsTargeting(node *corev1.Node, t Target) bool { return !IsTargeting(node, t) }

// IsDoneAt reports whether node runs t: it targets t and the daemon is done (the reference's IsDone).
func IsDoneAt(node *corev1.Node, t Target) bool {
	return IsTargeting(node, t) && IsNodeDone(node)
}

// HasUpdateInProgressTaint reports whether node carries the UpdateInProgress:PreferNoSchedule taint.
func HasUpdateInProgressTaint(node *corev1.Node) bool {
	want := UpdateInProgressTaint()
	for _, t := range node.Spec.Taints {
		if t.MatchTaint(&want) {
			return true
		}
	}
	return false
}

// UpdateInProgressTaint returns the taint put on nodes that do not yet target their pool's config.
func UpdateInProgressTaint() corev1.Taint {
	return corev1.Taint{Key: wellknown.UpdateInProgressTaintKey, Effect: corev1.TaintEffectPreferNoSchedule}
}
