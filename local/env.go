package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"

	"github.com/imagemode/imagemode/daemon/simnode"
	"github.com/imagemode/imagemode/internal/controlplane"
	"github.com/imagemode/imagemode/registry/localregistry"
	"github.com/imagemode/imagemode/testimages"
)

// Namespace is where the build service keeps its objects and where the docs put the pull secrets.
const Namespace = "openshift-machine-config-operator"

// Names of the secrets the docs' MachineOSConfig refers to.
const (
	BasePullSecretName = "global-pull-secret-copy"
	PushSecretName     = "builder-dockercfg-mtcl23"
)

// BaseImageRepository is the repository of the local registry holding the test base OS image.
const BaseImageRepository = "openshift/rhcos-base"

// Options configures the local environment.
type Options struct {
	// StateDir holds the control plane's and the registry's state and logs. Required.
	StateDir string
	// Logs receives the processes' logs when not nil (they always go to files under StateDir).
	Logs io.Writer
	// DocsRegistry serves the registry where the docs' MachineOSConfig pushes:
	// image-registry.openshift-image-registry.svc:5000, which must resolve to 127.0.0.1 (hack/demo.sh adds
	// the /etc/hosts entry). Otherwise the registry listens on a free port and the demo points the docs'
	// push spec at it.
	DocsRegistry bool
}

// DocsRegistryHostname and DocsRegistryPort are where the docs' MachineOSConfig pushes its image.
const (
	DocsRegistryHostname = "image-registry.openshift-image-registry.svc"
	DocsRegistryPort     = "5000"
)

// Env is a running local environment.
type Env struct {
	ControlPlane *controlplane.ControlPlane
	Registry     *localregistry.Registry
	// BaseImage is the digested pull spec of the test base OS image in Registry.
	BaseImage string
	// Nodes are the running simulated nodes.
	Nodes []*simnode.Node

	opts            Options
	stopControllers func() error
}

// StartControlPlane starts etcd, kube-apiserver (with the CRDs) and kube-controller-manager.
func (e *Env) StartControlPlane(ctx context.Context) error {
	dir := filepath.Join(e.opts.StateDir, "controlplane")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cp, err := controlplane.New(ctx, controlplane.Options{ControllerManager: true, WorkDir: dir, Output: e.opts.Logs})
	if err != nil {
		return err
	}
	e.ControlPlane = cp
	return nil
}

// StartRegistry starts the TLS+auth registry.
func (e *Env) StartRegistry(ctx context.Context) error {
	opts := localregistry.Options{Dir: filepath.Join(e.opts.StateDir, "registry"), Output: e.opts.Logs}
	if e.opts.DocsRegistry {
		addrs, err := net.DefaultResolver.LookupHost(ctx, DocsRegistryHostname)
		if err != nil || !slices.Contains(addrs, "127.0.0.1") {
			return fmt.Errorf("the docs' registry host %s must resolve to 127.0.0.1 (add \"127.0.0.1 %s\" to /etc/hosts; hack/demo.sh does): %v",
				DocsRegistryHostname, DocsRegistryHostname, addrs)
		}
		opts.Addr, opts.Hostname = "127.0.0.1:"+DocsRegistryPort, DocsRegistryHostname
	}
	r, err := localregistry.Start(ctx, opts)
	if err != nil {
		return err
	}
	e.Registry = r
	return nil
}

// PushBaseImage pushes the test base OS image (built once per machine) to the registry.
func (e *Env) PushBaseImage(ctx context.Context) error {
	if e.Registry == nil {
		return errors.New("registry not started")
	}
	ref, err := testimages.Push(ctx, e.Registry.SystemContext(), testimages.Options{}, e.Registry.Ref(BaseImageRepository, ":latest"))
	if err != nil {
		return err
	}
	e.BaseImage = ref
	return nil
}

// New returns an environment that keeps its state under opts.StateDir; its parts are started by the
// Start* methods, so that a caller can time and report each.
func New(opts Options) (*Env, error) {
	if opts.StateDir == "" {
		return nil, errors.New("local: Options.StateDir is required")
	}
	if err := os.MkdirAll(opts.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating state directory: %w", err)
	}
	return &Env{opts: opts}, nil
}

// Stop stops every part that was started: controllers first, the control plane last.
func (e *Env) Stop() error {
	var errs []error
	errs = append(errs, e.stopNodes())
	if e.stopControllers != nil {
		errs = append(errs, e.stopControllers())
		e.stopControllers = nil
	}
	if e.Registry != nil {
		errs = append(errs, e.Registry.Stop())
		e.Registry = nil
	}
	if e.ControlPlane != nil {
		errs = append(errs, e.ControlPlane.Stop())
		e.ControlPlane = nil
	}
	return errors.Join(errs...)
}
