package localenv

import (
	"context"
	"errors"
	"fmt"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/imagemode/imagemode/internal/version"
	"github.com/imagemode/imagemode/render"
)

// StartControllers runs the cluster-side controllers in this process (as imagemode-controller would run
// them in a cluster) until Stop.
func (e *Env) StartControllers(ctx context.Context) error {
	if e.ControlPlane == nil {
		return errors.New("control plane not started")
	}
	mgr, err := ctrl.NewManager(e.ControlPlane.Config, ctrl.Options{
		Scheme:  e.ControlPlane.Scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
	})
	if err != nil {
		return fmt.Errorf("creating controller manager: %w", err)
	}
	if err := render.AddToManager(mgr, render.Options{Version: version.Get()}); err != nil {
		return err
	}
	mgrCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	e.stopControllers = func() error {
		cancel()
		return <-done
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
