package daemon

import (
	"errors"

	"github.com/imagemode/imagemode/render/machineconfig"
)

// Sentinel errors of the daemon's pure core, for errors.Is.
var (
	// ErrNoConfig is returned when a config the computation needs is missing.
	ErrNoConfig = errors.New("no machineconfig given")
	// ErrRemoteSource is returned for an Ignition file whose contents are not an inline data URL.
	ErrRemoteSource = machineconfig.ErrRemoteSource
	// ErrUnsupportedCompression is returned for an Ignition file compression other than gzip.
	ErrUnsupportedCompression = machineconfig.ErrUnsupportedCompression
	// ErrUnterminatedQuote is returned for a kernel argument string with an odd number of double quotes.
	ErrUnterminatedQuote = errors.New("unterminated double quote")
	// ErrUnmanagedPath is returned for a host path a config may not write, before or after resolving
	// symlinks inside the root.
	ErrUnmanagedPath = errors.New("path is not managed by machine configs")
	// ErrNoBootedDeployment is returned when rpm-ostree status lists no booted deployment.
	ErrNoBootedDeployment = errors.New("no booted deployment")
)

// DriftError is a difference between what a config says and what is on disk, found by ValidateOnDisk: the
// host path concerned and the reason, worded as the reference words it (`content mismatch for file
// "/etc/foo"`).
type DriftError struct {
	Path   string
	Reason string
}

func (e *DriftError) Error() string { return e.Reason }
