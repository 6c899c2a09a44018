package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/imagemode/imagemode/builder/buildcmd"
	"github.com/imagemode/imagemode/builder/podrunner"
	"github.com/imagemode/imagemode/internal/version"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/system"
)

// BuilderExecEnv, set to "imagemode-builder" in a process's environment, makes the process that calls
// RunBuilderIfRequested act as the build pods' program: the local pod runner runs build pods by executing
// the current binary (imagemode-local, or a test binary) with it.
const BuilderExecEnv = "IMAGEMODE_LOCAL_EXEC_AS"

// RunBuilderIfRequested runs `imagemode-builder` with the process's arguments and exits when BuilderExecEnv
// asks for it; otherwise it returns. Call it first in main (after buildah.Reexec) and in TestMain.
func RunBuilderIfRequested() {
	if os.Getenv(BuilderExecEnv) != "imagemode-builder" {
		return
	}
	root := &cobra.Command{Use: "imagemode-builder", SilenceUsage: true}
	root.AddCommand(buildcmd.NewCommand())
	root.SetArgs(os.Args[1:])
	if err := root.Execute(); err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

// BuildCacheHostPath is the hostPath build pods keep their layer cache in (under the pod runner's host
// path root, inside the state directory).
const BuildCacheHostPath = "/var/lib/imagemode/build-cache"

// StartControllers runs the cluster-side controllers in this process, assembled by package system as
// imagemode-controller runs them in a cluster (render, registries, disruption policy status, rollout, drain, the build service and the
// registry garbage collector), plus the local pod runner that plays the kubelet for build pods, until Stop.
func (e *Env) StartControllers(ctx context.Context) error {
	if e.ControlPlane == nil {
		return errors.New("control plane not started")
	}
	ns := wellknown.MCONamespace
	sys := system.Options{Namespace: ns, Version: version.Get(), BuilderImage: "imagemode:local", BuildCacheHostPath: BuildCacheHostPath}
	mgr, err := ctrl.NewManager(e.ControlPlane.Config, system.ManagerOptions(ctrl.Options{
		Scheme:  e.ControlPlane.Scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
	}, sys))
	if err != nil {
		return fmt.Errorf("creating controller manager: %w", err)
	}
	if err := system.AddToManager(mgr, sys); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	runnerMgr, err := ctrl.NewManager(e.ControlPlane.Config, ctrl.Options{
		Scheme:  e.ControlPlane.Scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
	})
	if err != nil {
		return fmt.Errorf("creating pod runner manager: %w", err)
	}
	runner := &podrunner.Runner{Client: runnerMgr.GetClient(), Opts: podrunner.Options{
		Namespace: ns, Selector: labels.SelectorFromSet(labels.Set{wellknown.EphemeralBuildObjectLabel: ""}),
		NodeName: "local-pod-runner", StateDir: filepath.Join(e.opts.StateDir, "pods"),
		HostPathRoot: filepath.Join(e.opts.StateDir, "hostpath"),
		Programs:     map[string]string{"imagemode-builder": self},
		Env:          []string{BuilderExecEnv + "=imagemode-builder", "KUBECONFIG=" + e.ControlPlane.KubeconfigPath},
		KillGrace:    5 * time.Second,
	}}
	if err := runner.SetupWithManager(runnerMgr); err != nil {
		return err
	}
	mgrCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 2)
	go func() { done <- mgr.Start(mgrCtx) }()
	go func() { done <- runnerMgr.Start(mgrCtx) }()
	e.stopControllers = func() error {
		cancel()
		err := errors.Join(<-done, <-done)
		runner.Stop()
		return err
	}
	return nil
}

// WaitPoolsRendered waits until every pool points at a rendered config.
func (e *Env) WaitPoolsRendered(ctx context.Context, timeout time.Duration) error {
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		var pools mcfgv1.MachineConfigPoolList
		if err := e.ControlPlane.Client.List(ctx, &pools); err != nil {
			return false, err
		}
		for _, p := range pools.Items {
			if p.Spec.Configuration.Name == "" {
				return false, nil
			}
		}
		return len(pools.Items) > 0, nil
	})
}
