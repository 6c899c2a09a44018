// Command imagemode-builder is the program build pods run: `imagemode-builder build` builds a layered OS
// image in-process with the buildah library, pushes it and records its digest.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/imagemode/imagemode/builder/buildah"
	"github.com/imagemode/imagemode/builder/buildcmd"
	"github.com/imagemode/imagemode/internal/version"
)

func main() {
	if buildah.Reexec() { // chroot RUN steps re-execute this binary
		return
	}
	// A pod being deleted gets SIGTERM and a grace period: cancel the build so it closes its image store
	// (unmounting its layers) instead of being killed mid-way.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	root := &cobra.Command{Use: "imagemode-builder", Short: "Build layered OS images", Version: version.Get(), SilenceUsage: true}
	root.AddCommand(buildcmd.NewCommand())
	if err := root.ExecuteContext(ctx); err != nil {
		stop()
		os.Exit(1)
	}
}
