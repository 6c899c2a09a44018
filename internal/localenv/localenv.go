package localenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

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
}

// Env is a running local environment.
type Env struct {
	ControlPlane *controlplane.ControlPlane
	Registry     *localregistry.Registry
	// BaseImage is the digested pull spec of the test base OS image in Registry.
	BaseImage string

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
	r, err := localregistry.Start(ctx, localregistry.Options{Dir: filepath.Join(e.opts.StateDir, "registry"), Output: e.opts.Logs})
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
		return nil, errors.New("localenv: Options.StateDir is required")
	}
	if err := os.MkdirAll(opts.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating state directory: %w", err)
	}
	return &Env{opts: opts}, nil
}

// Stop stops every part that was started: controllers first, the control plane last.
func (e *Env) Stop() error {
	var errs []error
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
