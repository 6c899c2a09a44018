// Package layering composes what a layered build consumes: the Containerfile (a stage that bakes the pool's
// rendered MachineConfig into the base OS image as the stage `configs`, then the user's Containerfile) and
// its build context, as pure functions of the rendered config and the MachineOSConfig.
//
// Not implemented yet: this package is the home of issue #6's Containerfile rendering.
package layering
