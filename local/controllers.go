package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2/textlogger"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/imagemode/imagemode/builder/buildcmd"
	"github.com/imagemode/imagemode/builder/podrunner"
	"github.com/imagemode/imagemode/internal/scheme"
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
	stop, err := runControllers(ctx, e.ControlPlane.Config, e.ControlPlane.KubeconfigPath, e.opts.StateDir, "0")
	if err != nil {
		return err
	}
	e.stopControllers = stop
	return nil
}

// runControllers starts the controllers and the local pod runner against cfg; the manager serves its
// metrics (controller-runtime's, client-go's and the process's) on metricsAddr ("0": none).
func runControllers(ctx context.Context, cfg *rest.Config, kubeconfig, stateDir, metricsAddr string) (func() error, error) {
	ns := wellknown.MCONamespace
	sys := system.Options{Namespace: ns, Version: version.Get(), BuilderImage: "imagemode:local", BuildCacheHostPath: BuildCacheHostPath}
	mgr, err := ctrl.NewManager(cfg, system.ManagerOptions(ctrl.Options{
		Scheme:  scheme.New(),
		Metrics: metricsserver.Options{BindAddress: metricsAddr},
	}, sys))
	if err != nil {
		return nil, fmt.Errorf("creating controller manager: %w", err)
	}
	if err := system.AddToManager(mgr, sys); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	runnerMgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  scheme.New(),
		Metrics: metricsserver.Options{BindAddress: "0"},
	})
	if err != nil {
		return nil, fmt.Errorf("creating pod runner manager: %w", err)
	}
	runner := &podrunner.Runner{Client: runnerMgr.GetClient(), Opts: podrunner.Options{
		Namespace: ns, Selector: labels.SelectorFromSet(labels.Set{wellknown.EphemeralBuildObjectLabel: ""}),
		NodeName: "local-pod-runner", StateDir: filepath.Join(stateDir, "pods"),
		HostPathRoot: filepath.Join(stateDir, "hostpath"),
		Programs:     map[string]string{"imagemode-builder": self},
		Env:          []string{BuilderExecEnv + "=imagemode-builder", "KUBECONFIG=" + kubeconfig},
		KillGrace:    5 * time.Second,
	}}
	if err := runner.SetupWithManager(runnerMgr); err != nil {
		return nil, err
	}
	mgrCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 2)
	go func() { done <- mgr.Start(mgrCtx) }()
	go func() { done <- runnerMgr.Start(mgrCtx) }()
	return func() error {
		cancel()
		err := errors.Join(<-done, <-done)
		runner.Stop()
		return err
	}, nil
}

// Settings of the controllers process StartControllersProcess starts (BuilderExecEnv=imagemode-controllers).
const (
	controllersStateDirEnv = "IMAGEMODE_LOCAL_STATE_DIR"
	controllersMetricsEnv  = "IMAGEMODE_LOCAL_METRICS_ADDR"
)

// RunControllersIfRequested runs the controllers and the local pod runner against $KUBECONFIG until
// SIGTERM, then exits, when BuilderExecEnv is "imagemode-controllers" (StartControllersProcess); otherwise
// it returns. Call it first in TestMain, next to RunBuilderIfRequested.
func RunControllersIfRequested() {
	if os.Getenv(BuilderExecEnv) != "imagemode-controllers" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if os.Getenv("IMAGEMODE_TEST_LOGS") != "" {
		ctrl.SetLogger(textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(os.Stderr))))
	} else {
		ctrl.SetLogger(logr.Discard())
	}
	cfg, err := ctrl.GetConfig()
	if err == nil {
		var stopControllers func() error
		stopControllers, err = runControllers(ctx, cfg, os.Getenv("KUBECONFIG"), os.Getenv(controllersStateDirEnv), os.Getenv(controllersMetricsEnv))
		if err == nil {
			<-ctx.Done()
			err = stopControllers()
		}
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "imagemode-controllers:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// StartControllersProcess runs the controllers as StartControllers does, but in a child process (this
// executable, which must call RunControllersIfRequested first), so that their CPU time and memory can be
// measured apart from the simulated nodes; it serves its metrics on metricsAddr. Its output goes to
// controllers.log in the state directory. Stop ends it with SIGTERM.
func (e *Env) StartControllersProcess(ctx context.Context, metricsAddr string) (*os.Process, error) {
	if e.ControlPlane == nil {
		return nil, errors.New("control plane not started")
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(e.opts.StateDir, "controllers.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), BuilderExecEnv+"=imagemode-controllers", "KUBECONFIG="+e.ControlPlane.KubeconfigPath,
		controllersStateDirEnv+"="+e.opts.StateDir, controllersMetricsEnv+"="+metricsAddr)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting the controllers process: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logFile.Close() }()
	e.stopControllers = func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			return err
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			return fmt.Errorf("the controllers process did not stop on SIGTERM: %w", <-exited)
		}
	}
	return cmd.Process, nil
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
