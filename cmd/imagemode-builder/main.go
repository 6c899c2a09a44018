// Command imagemode-builder is the program build pods run: `imagemode-builder build` builds a layered OS
// image in-process with the buildah library, pushes it and records its digest.
package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/imagemode/imagemode/builder/buildah"
	"github.com/imagemode/imagemode/builder/buildcmd"
	"github.com/imagemode/imagemode/internal/version"
)

func main() {
	if buildah.Reexec() { // chroot RUN steps re-execute this binary
		return
	}
	root := &cobra.Command{Use: "imagemode-builder", Short: "Build layered OS images", Version: version.Get(), SilenceUsage: true}
	root.AddCommand(buildcmd.NewCommand())
	if err := root.Execute(); err != nil {
		os.Exit(1)
	}
}
