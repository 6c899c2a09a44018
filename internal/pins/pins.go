//go:build tools

// Package pins keeps in go.mod, at the versions tested together on this machine's module proxy
// (shared/recipes/go-modules), the libraries that later parts of the project are built on but that no code
// imports yet. The build tag keeps them out of every normal build; `go mod tidy` still sees them. Remove a
// line when real code imports that library.
package pins

import (
	_ "github.com/coreos/rpmostree-client-go/pkg/client"                        // rpm-ostree status JSON shapes (daemon)
	_ "github.com/moby/buildkit/frontend/dockerfile/parser"                     // Containerfile validation (layering)
	_ "github.com/openshift/client-go/machineconfiguration/clientset/versioned" // CLI and informers
)
