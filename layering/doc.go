// Package layering composes what a layered OS image build consumes, as pure functions of its inputs: the
// Containerfile and the build context, from a pool's rendered MachineConfig and the MachineOSConfig.
//
// The Containerfile starts with a stage named `configs`: the base OS image (the rendered config's
// osImageURL) with the rendered config baked in, then the MachineOSConfig's Containerfile for the build's
// architecture follows verbatim (the docs' example starts with `FROM configs AS final`). Baking needs no tool
// in the base image: Compose decodes every Ignition file, directory, link, systemd unit, drop-in, the
// enablement and mask symlinks systemctl would create, the core user's ssh keys and the daemon's
// currentconfig record in Go, and lays them out in the build context as one directory per COPY
// (destination directory and owner), so that COPY never touches a directory the config does not declare.
// Only units the config enables or disables without shipping their contents (units of the OS) need a
// `RUN systemctl` step. Kernel arguments are left to the node; extensions and kernel types are refused
// until layered builds support them.
//
// Every error is a function of the inputs alone, so retrying never helps; an invalid Containerfile is a
// *ContainerfileError, which the build service tells apart with errors.As.
package layering
