package simnode_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/daemon"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/local"
	"github.com/imagemode/imagemode/render/rollout"
	"github.com/imagemode/imagemode/testimages"
)

// rebaseFaultHost fails the OS updater's rebase while fail is set, counting the failed attempts.
type rebaseFaultHost struct {
	daemon.Host
	fail   *atomic.Bool
	failed *atomic.Int32
}

func (h *rebaseFaultHost) OS() daemon.OSUpdater {
	return &rebaseFaultOS{OSUpdater: h.Host.OS(), h: h}
}

type rebaseFaultOS struct {
	daemon.OSUpdater
	h *rebaseFaultHost
}

func (o *rebaseFaultOS) Rebase(ctx context.Context, pullSpec, authFile string) error {
	if o.h.fail.Load() {
		o.h.failed.Add(1)
		return fmt.Errorf("rpm-ostree rebase %s: injected failure: error: Importing: failed to pull layer", pullSpec)
	}
	return o.OSUpdater.Rebase(ctx, pullSpec, authFile)
}

// testRebaseFault (issue 14, fault row 7): the host's updater fails the rebase to a new OS image. The node
// goes Degraded with the error in its state and reason annotations and its MachineConfigNode, the previous
// files stay on the host (the config's new files are rolled back), the pool counts the node degraded with
// NodeDegraded=True; once the updater works again the daemon's own retry converges on the new image with a
// single reboot, and the pool clears NodeDegraded.
func testRebaseFault(t *testing.T, ctx context.Context, env *local.Env) {
	c := env.ControlPlane.Client
	const pool = "rebasepool"
	ownPool(t, ctx, c, pool)
	var fail atomic.Bool
	var failed atomic.Int32
	wrap := func(h daemon.Host) daemon.Host { return &rebaseFaultHost{Host: h, fail: &fail, failed: &failed} }
	node := startNodeSpec(t, ctx, env, nodeSpec{name: "rebase-0", pools: []string{pool}, wrap: wrap, delete: true})
	first := poolTarget(t, ctx, c, pool, "")
	waitNode(t, ctx, c, node, "the first config", doneOn(first))
	reboots := node.Reboots()

	newOS, err := testimages.Push(ctx, env.Registry.SystemContext(), testimages.Options{Version: "9.6.20260303-1"},
		env.Registry.Ref(local.BaseImageRepository, ":rebase-fault"))
	if err != nil {
		t.Fatal(err)
	}
	const marker = "/etc/imagemode/rebase-marker"
	fail.Store(true)
	mc := roleConfig("50-"+pool+"-os", pool, filesIgn(map[string]string{marker: "new-os\n"}, ""))
	mc.Spec.OSImageURL = newOS
	if err := c.Create(ctx, mc); err != nil {
		t.Fatal(err)
	}
	mcp := &mcfgv1.MachineConfigPool{}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Name: pool}, mcp); err != nil {
			return false, err
		}
		return mcp.Spec.Configuration.Name != first, nil
	})
	if err != nil {
		t.Fatalf("pool %s never targets the new OS: %v\n%+v", pool, err, mcp.Status.Conditions)
	}
	target := mcp.Spec.Configuration.Name

	n := waitNode(t, ctx, c, node, "Degraded by the failed rebase", stateIs(wellknown.NodeStateDegraded))
	reason := n.Annotations[wellknown.ReasonAnnotation]
	if !strings.Contains(reason, "injected failure") || !strings.Contains(reason, "rebasing to") {
		t.Errorf("reason %q does not carry the rebase error", reason)
	}
	if n.Annotations[wellknown.CurrentConfigAnnotation] != first {
		t.Errorf("currentConfig %q while the update failed, want %q", n.Annotations[wellknown.CurrentConfigAnnotation], first)
	}
	mcn := &mcfgv1.MachineConfigNode{}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Name: node.Name()}, mcn); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		cond := meta.FindStatusCondition(mcn.Status.Conditions, string(mcfgv1.MachineConfigNodeNodeDegraded))
		return cond != nil && cond.Status == "True" && strings.Contains(cond.Message, "injected failure"), nil
	})
	if err != nil {
		t.Errorf("MachineConfigNode %s never NodeDegraded with the rebase error: %v\n%+v", node.Name(), err, mcn.Status.Conditions)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Name: pool}, mcp); err != nil {
			return false, err
		}
		cond := poolCondition(mcp, mcfgv1.MachineConfigPoolNodeDegraded)
		return mcp.Status.DegradedMachineCount == 1 && cond != nil && cond.Status == corev1.ConditionTrue &&
			cond.Reason == fmt.Sprintf(rollout.NodeDegradedReasonFormat, 1) && strings.Contains(cond.Message, "injected failure"), nil
	})
	if err != nil {
		t.Errorf("pool %s does not report the degraded node: %v\ndegradedMachineCount %d, conditions %+v", pool, err,
			mcp.Status.DegradedMachineCount, mcp.Status.Conditions)
	}
	// Between retries the host keeps the previous config's files: the new file is rolled back.
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return hostFile(node, marker) == "<absent>" && hostFile(node, "/etc/imagemode/pool") == pool+"\n", nil
	})
	if err != nil {
		t.Errorf("after the failed rebase %s = %q; want the previous files only", marker, hostFile(node, marker))
	}
	if node.Reboots() != reboots {
		t.Errorf("the node rebooted %d times while its rebase failed", node.Reboots()-reboots)
	}

	// The cause goes away: the daemon's own retry converges, with one reboot.
	fail.Store(false)
	if failed.Load() == 0 {
		t.Fatal("the rebase was never attempted")
	}
	waitNode(t, ctx, c, node, "the new OS after the failure", doneOn(target))
	if got := node.Reboots() - reboots; got != 1 {
		t.Errorf("%d reboots for the OS change after a failed rebase, want 1", got)
	}
	st, err := node.Host.OS().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(newOS, st.BootedImageDigest()) || st.BootedImageDigest() == "" {
		t.Errorf("booted %s, want %s", st.BootedImage(), newOS)
	}
	if got := hostFile(node, marker); got != "new-os\n" {
		t.Errorf("%s = %q after the recovery", marker, got)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Name: pool}, mcp); err != nil {
			return false, err
		}
		cond := poolCondition(mcp, mcfgv1.MachineConfigPoolNodeDegraded)
		return mcp.Status.DegradedMachineCount == 0 && cond != nil && cond.Status == corev1.ConditionFalse, nil
	})
	if err != nil {
		t.Errorf("pool %s still reports a degraded node: %v\n%+v", pool, err, mcp.Status.Conditions)
	}
	if err := c.Get(ctx, client.ObjectKey{Name: node.Name()}, mcn); err != nil {
		t.Fatal(err)
	}
	if cond := meta.FindStatusCondition(mcn.Status.Conditions, string(mcfgv1.MachineConfigNodeNodeDegraded)); cond == nil || cond.Status != "False" {
		t.Errorf("MachineConfigNode NodeDegraded after the recovery: %+v", cond)
	}
	t.Logf("%d failed rebase attempts before the cause went away", failed.Load())
}

func poolCondition(p *mcfgv1.MachineConfigPool, typ mcfgv1.MachineConfigPoolConditionType) *mcfgv1.MachineConfigPoolCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == typ {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}
