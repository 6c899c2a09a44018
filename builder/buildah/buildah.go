package buildah

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/opencontainers/go-digest"
	bh "go.podman.io/buildah"
	"go.podman.io/buildah/define"
	"go.podman.io/buildah/imagebuildah"
	nettypes "go.podman.io/common/libnetwork/types"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/unshare"
	"golang.org/x/sys/unix"

	"github.com/imagemode/imagemode/registry"
)

// Reexec must be the first call in main (and TestMain) of any binary that builds: when the process was
// re-executed by buildah to run a chroot RUN step it does that work and returns true, and the caller must
// return at once.
func Reexec() bool {
	if bh.InitReexec() {
		return true
	}
	unshare.MaybeReexecUsingUserNamespace(false)
	return false
}

// StoreOptions places a containers/storage store.
type StoreOptions struct {
	// Root holds images and layers; RunRoot (Root+"-run" when empty) holds mounts and locks.
	Root, RunRoot string
	// Driver is the storage driver; "overlay" (native, kernel) when empty. "vfs" works anywhere, slower.
	Driver string
}

// OpenStore opens (creating if needed) the store. Close it with CloseStore.
func OpenStore(opts StoreOptions) (storage.Store, error) {
	if opts.Root == "" {
		return nil, errors.New("buildah: StoreOptions.Root is required")
	}
	if opts.RunRoot == "" {
		opts.RunRoot = opts.Root + "-run"
	}
	if opts.Driver == "" {
		opts.Driver = "overlay"
	}
	store, err := storage.GetStore(storage.StoreOptions{GraphRoot: opts.Root, RunRoot: opts.RunRoot, GraphDriverName: opts.Driver})
	if err != nil {
		return nil, fmt.Errorf("opening image store at %s: %w", opts.Root, err)
	}
	return store, nil
}

// CloseStore removes any working containers left in the store (a failed build leaves some, each holding an
// overlay mount) and shuts the store down, unmounting its layers.
func CloseStore(store storage.Store) error {
	var errs []error
	if ctrs, err := store.Containers(); err == nil {
		for _, c := range ctrs {
			if err := store.DeleteContainer(c.ID); err != nil {
				errs = append(errs, fmt.Errorf("deleting leftover container %s: %w", c.ID, err))
			}
		}
	} else {
		errs = append(errs, err)
	}
	if _, err := store.Shutdown(true); err != nil {
		errs = append(errs, fmt.Errorf("shutting down image store: %w", err))
	}
	return errors.Join(errs...)
}

// BuildOptions describes one build.
type BuildOptions struct {
	// ContextDir is the build context; made absolute (the library requires it).
	ContextDir string
	// Containerfile is the Containerfile's path, relative to ContextDir unless absolute.
	Containerfile string
	// Tag names the resulting image in the store (e.g. "localhost/layered:build-1").
	Tag string
	// SystemContext gives registry credentials and CAs for pulling base images (nil: anonymous, system CAs).
	SystemContext *types.SystemContext
	// Labels are added to the final image, as "key=value".
	Labels []string
	// BuildArgs are --build-arg values.
	BuildArgs map[string]string
	// Layers caches each step as an image, so an unchanged prefix of a later build is reused.
	Layers bool
	// Output receives the build's progress and RUN output; io.Discard when nil.
	Output io.Writer
	// WorkDir holds the signature policy file; a temporary directory when empty.
	WorkDir string
	// Volumes are bind mounts every RUN step sees, "host-dir:container-dir[:options]" as buildah's
	// --volume (e.g. "/tmp/ent:/etc/pki/entitlement:ro"). What they hold is not committed to the image.
	Volumes []string
}

// Build builds the Containerfile into store and returns the image ID.
func Build(ctx context.Context, store storage.Store, opts BuildOptions) (string, error) {
	ctxDir, err := filepath.Abs(opts.ContextDir)
	if err != nil {
		return "", fmt.Errorf("resolving build context %q: %w", opts.ContextDir, err)
	}
	containerfile := opts.Containerfile
	if !filepath.IsAbs(containerfile) {
		containerfile = filepath.Join(ctxDir, containerfile)
	}
	out := opts.Output
	if out == nil {
		out = io.Discard
	}
	workDir := opts.WorkDir
	if workDir == "" {
		if workDir, err = os.MkdirTemp("", "imagemode-build-"); err != nil {
			return "", err
		}
		defer os.RemoveAll(workDir)
	}
	policy, err := writeAcceptAnythingPolicy(workDir)
	if err != nil {
		return "", err
	}
	ulimits, err := currentUlimits()
	if err != nil {
		return "", err
	}
	id, _, err := imagebuildah.BuildDockerfiles(ctx, store, define.BuildOptions{
		ContextDirectory:        ctxDir,
		Output:                  opts.Tag,
		Isolation:               define.IsolationChroot,
		PullPolicy:              define.PullIfMissing,
		Layers:                  opts.Layers,
		OutputFormat:            define.OCIv1ImageManifest,
		CommonBuildOpts:         &define.CommonBuildOptions{Ulimit: ulimits, Volumes: opts.Volumes},
		NetworkInterface:        noNetwork{},
		ConfigureNetwork:        define.NetworkDisabled,
		SignaturePolicyPath:     policy,
		RemoveIntermediateCtrs:  true,
		ForceRmIntermediateCtrs: true,
		SystemContext:           opts.SystemContext,
		Labels:                  opts.Labels,
		Args:                    opts.BuildArgs,
		ReportWriter:            out,
		Out:                     out,
		Err:                     out,
	}, containerfile)
	if err != nil {
		return "", fmt.Errorf("building %s: %w", filepath.Base(containerfile), err)
	}
	return id, nil
}

// Push pushes image (an ID or name in store) to dest, a pull spec such as "registry:5000/os/layered:tag",
// and returns the manifest digest the registry stored.
func Push(ctx context.Context, store storage.Store, image, dest string, sys *types.SystemContext, out io.Writer) (digest.Digest, error) {
	ref, err := registry.ParseReference(dest)
	if err != nil {
		return "", err
	}
	workDir, err := os.MkdirTemp("", "imagemode-push-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(workDir)
	policy, err := writeAcceptAnythingPolicy(workDir)
	if err != nil {
		return "", err
	}
	if out == nil {
		out = io.Discard
	}
	_, dgst, err := bh.Push(ctx, image, ref, bh.PushOptions{
		Store:               store,
		SystemContext:       sys,
		SignaturePolicyPath: policy,
		ReportWriter:        out,
		MaxRetries:          3,
	})
	if err != nil {
		return "", fmt.Errorf("pushing %s: %w", dest, err)
	}
	return dgst, nil
}

// writeAcceptAnythingPolicy writes a signature policy accepting any image. Trust in what is pulled comes
// from the registry's TLS and from digests, as for the cluster's own pulls.
func writeAcceptAnythingPolicy(dir string) (string, error) {
	path := filepath.Join(dir, "policy.json")
	if err := os.WriteFile(path, []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`), 0o644); err != nil {
		return "", fmt.Errorf("writing signature policy: %w", err)
	}
	return path, nil
}

// currentUlimits returns nofile and nproc limits equal to this process's: buildah's defaults are higher and
// raising them needs CAP_SYS_RESOURCE. An unlimited value is passed as -1, buildah's "unlimited".
func currentUlimits() ([]string, error) {
	var out []string
	for _, l := range []struct {
		name string
		res  int
	}{{"nofile", unix.RLIMIT_NOFILE}, {"nproc", unix.RLIMIT_NPROC}} {
		var r unix.Rlimit
		if err := unix.Getrlimit(l.res, &r); err != nil {
			return nil, fmt.Errorf("reading %s limit: %w", l.name, err)
		}
		out = append(out, fmt.Sprintf("%s=%s:%s", l.name, rlimitValue(r.Cur), rlimitValue(r.Max)))
	}
	return out, nil
}

func rlimitValue(v uint64) string {
	if v == unix.RLIM_INFINITY || v > math.MaxInt64 {
		return "-1"
	}
	return strconv.FormatUint(v, 10)
}

// noNetwork satisfies the library's network interface; builds run with networking disabled, so it is
// never called.
type noNetwork struct{ nettypes.ContainerNetwork }
