package simnode_test

import (
	"os"
	"testing"

	"github.com/imagemode/imagemode/builder/buildah"
	"github.com/imagemode/imagemode/local"
)

// TestMain lets buildah re-execute the test binary for its build steps (the layered pool's image), and the
// local pod runner run it as a build pod's program.
func TestMain(m *testing.M) {
	if buildah.Reexec() {
		return
	}
	local.RunBuilderIfRequested()
	os.Exit(m.Run())
}
