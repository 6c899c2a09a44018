package gc

import (
	"context"
	"fmt"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// setFinalizer adds or removes FinalizerName on mosb with an optimistic lock (the list is replaced as a
// whole); a build already gone is not an error. The build reconciler, `imagemode prune images` and every
// other path that holds or releases a build's image use it.
func setFinalizer(ctx context.Context, c client.Client, mosb *mcfgv1.MachineOSBuild, add bool) error {
	if controllerutil.ContainsFinalizer(mosb, FinalizerName) == add {
		return nil
	}
	before := mosb.DeepCopy()
	if add {
		controllerutil.AddFinalizer(mosb, FinalizerName)
	} else {
		controllerutil.RemoveFinalizer(mosb, FinalizerName)
	}
	if err := c.Patch(ctx, mosb, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("updating finalizers of machineosbuild %s: %w", mosb.Name, err)
	}
	return nil
}

// deleteBuild deletes the MachineOSBuild b exactly (a UID precondition: never a newer build of the same
// name); one already gone is not an error.
func deleteBuild(ctx context.Context, c client.Client, b *mcfgv1.MachineOSBuild) error {
	uid := b.UID
	if err := c.Delete(ctx, b, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting machineosbuild %s: %w", b.Name, err)
	}
	return nil
}
