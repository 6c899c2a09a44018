package simhost

import (
	"context"

	"github.com/imagemode/imagemode/daemon"
)

var _ daemon.CommandHost = (*Host)(nil)

// Commands runs commands on the simulated host: chrooted into its root as it is when each command runs (on an
// OSTree host, the booted deployment), so they see the booted image's /usr and the host's /etc (the test base
// image is busybox: sh and its applets are there).
func (h *Host) Commands() daemon.CommandRunner { return chrootRunner{h: h} }

type chrootRunner struct{ h *Host }

func (r chrootRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	return daemon.ExecRunner{}.Run(ctx, "chroot", append([]string{string(r.h.Root()), name}, args...)...)
}
