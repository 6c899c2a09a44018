// Package version holds this build's version, stamped at link time:
//
//	go build -ldflags "-X github.com/imagemode/imagemode/internal/version.version=v0.2.0"
//
// Controllers write it where the reference writes its own (e.g. generated-by-controller-version).
package version

// version is set by -ldflags -X; it is the only package-level variable the project keeps, and only the
// linker writes it.
var version = "v0.0.0-dev"

// Get returns the build's version.
func Get() string { return version }
