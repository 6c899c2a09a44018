package simnode_test

import (
	"context"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/local"
)

// testEtcdRestart (issue 14, fault row 2): etcd is restarted under the API server while a pool of two nodes
// rolls out a config that reboots them one at a time. The rollout resumes where it was: both nodes end on
// the new config with one reboot each, and the pool counts them updated.
func testEtcdRestart(t *testing.T, ctx context.Context, env *local.Env) {
	c := env.ControlPlane.Client
	ownPool(t, ctx, c, "etcdr")
	n0 := startNodeSpec(t, ctx, env, nodeSpec{name: "etcdr-0", pools: []string{"etcdr"}, delete: true})
	n1 := startNodeSpec(t, ctx, env, nodeSpec{name: "etcdr-1", pools: []string{"etcdr"}, delete: true})
	cfg0 := poolTarget(t, ctx, c, "etcdr", "")
	waitNode(t, ctx, c, n0, "the first config", doneOn(cfg0))
	waitNode(t, ctx, c, n1, "the first config", doneOn(cfg0))
	reboots := n0.Reboots() + n1.Reboots()

	// A file no policy covers: each node drains and reboots, one at a time (maxUnavailable 1).
	if err := c.Create(ctx, roleConfig("10-etcdr-file", "etcdr", filesIgn(map[string]string{"/etc/etcdr": "rolled\n"}, ""))); err != nil {
		t.Fatal(err)
	}
	cfg1 := poolTarget(t, ctx, c, "etcdr", cfg0)
	targeted := func(n *corev1.Node) bool { return n.Annotations[wellknown.DesiredConfigAnnotation] == cfg1 }
	if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		var nodes corev1.NodeList
		if err := c.List(ctx, &nodes, client.HasLabels{local.NodeRoleLabelPrefix + "etcdr"}); err != nil {
			return false, err
		}
		for i := range nodes.Items {
			if targeted(&nodes.Items[i]) {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Fatalf("no node targeted %s: %v", cfg1, err)
	}
	if err := env.ControlPlane.RestartEtcd(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	// The rollout was under way when etcd went (its second node cannot have moved yet).
	var pending int
	for _, n := range []string{n0.Name(), n1.Name()} {
		node := &corev1.Node{}
		if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			return c.Get(ctx, client.ObjectKey{Name: n}, node) == nil, nil
		}); err != nil {
			t.Fatal(err)
		}
		if !doneOn(cfg1)(node) {
			pending++
		}
	}
	if pending == 0 {
		t.Fatal("the rollout was over before etcd restarted: the test proves nothing")
	}

	waitNode(t, ctx, c, n0, "the new config after the etcd restart", doneOn(cfg1))
	waitNode(t, ctx, c, n1, "the new config after the etcd restart", doneOn(cfg1))
	if got := n0.Reboots() + n1.Reboots() - reboots; got != 2 {
		t.Errorf("%d reboots for the rollout, want one per node", got)
	}
	for _, n := range []string{hostFile(n0, "/etc/etcdr"), hostFile(n1, "/etc/etcdr")} {
		if n != "rolled\n" {
			t.Errorf("file on a node: %q", n)
		}
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p := &mcfgv1.MachineConfigPool{}
		if err := c.Get(ctx, client.ObjectKey{Name: "etcdr"}, p); err != nil {
			return false, nil // the API server may still be reconnecting
		}
		return p.Status.UpdatedMachineCount == 2 && p.Status.Configuration.Name == cfg1, nil
	}); err != nil {
		t.Errorf("pool etcdr never counted both nodes updated on %s: %v", cfg1, err)
	}
}
