package containerruntime

import (
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/imagemode/imagemode/internal/wellknown"
)

// ImageConfigName is the name of the cluster's single images.config.openshift.io object.
const ImageConfigName = "cluster"

// IsBuiltInPool reports whether obj (a MachineConfigPool) carries the mco-built-in label, whatever its value.
func IsBuiltInPool(obj client.Object) bool {
	_, ok := obj.GetLabels()[wellknown.BuiltInPoolLabel]
	return ok
}

// builtInPoolChanged lets through the pool events that can change what this controller does: a built-in pool
// created, deleted or relabelled. Status and spec updates (the render controller writes them all the time)
// change nothing here.
func builtInPoolChanged() predicate.Predicate {
	return predicate.And(predicate.NewPredicateFuncs(IsBuiltInPool), predicate.LabelChangedPredicate{})
}

// isImageConfig lets through events of images.config.openshift.io/cluster only.
func isImageConfig() predicate.Predicate {
	return predicate.NewPredicateFuncs(func(o client.Object) bool { return o.GetName() == ImageConfigName })
}

// isGeneratedConfig lets through events of MachineConfigs named like a generated registries config, so that
// an edit or deletion by someone else is corrected.
func isGeneratedConfig() predicate.Predicate {
	return predicate.NewPredicateFuncs(func(o client.Object) bool {
		_, ok := PoolForGeneratedName(o.GetName())
		return ok
	})
}

// isControllerConfig lets through events of the cluster's ControllerConfig only (it names the release image).
func isControllerConfig() predicate.Predicate {
	return predicate.NewPredicateFuncs(func(o client.Object) bool { return o.GetName() == wellknown.ControllerConfigName })
}
