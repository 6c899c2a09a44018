package agent

import (
	"context"
	"fmt"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"

	"github.com/imagemode/imagemode/daemon"
)

// applyPackages stages the kernel type and extensions of config newMC on a classic (non-layered) host:
// the rpm-ostree package changes from oldMC's (nil: the bare OS) to newMC's, then a check that the staged
// deployment carries them. Nothing to change does nothing.
func applyPackages(ctx context.Context, osu daemon.OSUpdater, oldMC, newMC *mcfgv1.MachineConfig) error {
	changes, err := daemon.PackageChanges(oldMC, newMC)
	if err != nil || len(changes) == 0 {
		return err
	}
	for _, c := range changes {
		if err := c.Apply(ctx, osu); err != nil {
			return fmt.Errorf("config %s: applying kernel type and extensions (%s): %w", newMC.Name, c, err)
		}
	}
	status, err := osu.Status(ctx)
	if err != nil {
		return fmt.Errorf("reading the OS status: %w", err)
	}
	if err := daemon.VerifyPackages(status.Staged, oldMC, newMC); err != nil {
		return fmt.Errorf("verifying the staged deployment: %w", err)
	}
	return nil
}
