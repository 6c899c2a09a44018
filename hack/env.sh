# Sourced by every hack/ script: the Go settings every go command of this module needs.
# The containers libraries (buildah, image, storage) need these build tags: without them cgo looks for
# gpgme and btrfs headers. Developers: `source hack/env.sh` before running go commands by hand.
export GOTOOLCHAIN=local
export GOFLAGS="-buildvcs=false -tags=containers_image_openpgp,exclude_graphdriver_btrfs"
export CGO_ENABLED=1
