package rollout

import (
	"fmt"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos/osbuild"
)

// applyDecision returns the nodes and MachineConfigNodes as they are after d is applied.
func applyDecision(nodes []*corev1.Node, mcns map[string]*mcfgv1.MachineConfigNode, d Decision) ([]*corev1.Node, map[string]*mcfgv1.MachineConfigNode) {
	out := append([]*corev1.Node(nil), nodes...)
	for _, c := range d.NodeChanges {
		for i, n := range out {
			if n.Name == c.Node.Name {
				out[i] = c.Updated
			}
		}
	}
	m := map[string]*mcfgv1.MachineConfigNode{}
	for k, v := range mcns {
		m[k] = v
	}
	for _, c := range d.MachineConfigNodes {
		m[c.Desired.Name] = c.Desired
	}
	return out, m
}

func poolNodes(n int, opts ...nodeOpt) []*corev1.Node {
	var out []*corev1.Node
	for i := 0; i < n; i++ {
		out = append(out, testNode(fmt.Sprintf("n%d", i), append([]nodeOpt{workerRole()}, opts...)...))
	}
	return out
}

func desiredOf(nodes []*corev1.Node) map[string]string {
	out := map[string]string{}
	for _, n := range nodes {
		out[n.Name] = n.Annotations[wellknown.DesiredConfigAnnotation]
		if img, ok := n.Annotations[wellknown.DesiredImageAnnotation]; ok {
			out[n.Name] += " " + img
		}
	}
	return out
}

func TestDecideClassicRollout(t *testing.T) {
	const old, cur = "rendered-worker-old", "rendered-worker-new"
	pool := withMaxUnavailable(workerPool(cur), intstr.FromInt32(2))
	nodes := poolNodes(5, on(old))
	in := Inputs{Pool: pool, Nodes: nodes, Now: metav1.NewTime(t0)}

	d := Decide(in)
	require.Equal(t, HoldNone, d.Hold)
	assert.Equal(t, []string{"n0", "n1"}, names(d.Targeted()))
	after, mcns := applyDecision(nodes, nil, d)
	assert.Equal(t, map[string]string{"n0": cur, "n1": cur, "n2": old, "n3": old, "n4": old}, desiredOf(after))
	for _, n := range after {
		assert.Equal(t, n.Name != "n0" && n.Name != "n1", HasUpdateInProgressTaint(n), "taint on %s: exactly while it does not target the config", n.Name)
	}
	for i, n := range nodes {
		assert.False(t, HasUpdateInProgressTaint(n), "input node %d not modified", i)
		assert.Equal(t, old, n.Annotations[wellknown.DesiredConfigAnnotation], "input node %d not modified", i)
	}
	assert.Len(t, d.MachineConfigNodes, 5, "a MachineConfigNode for every node")
	assert.Equal(t, cur, mcns["n0"].Spec.ConfigVersion.Desired)
	assert.Equal(t, old, mcns["n4"].Spec.ConfigVersion.Desired)
	assert.Equal(t, "worker", mcns["n4"].Spec.Pool.Name)
	assert.Equal(t, "False True False 5 0 0 0", columnsOf(d.Status))
	assert.Equal(t, int32(2), d.Status.UnavailableMachineCount)

	// The same state again: nothing to write.
	pool.Status = d.Status
	again := Decide(Inputs{Pool: pool, Nodes: after, MachineConfigNodes: mcns, Now: metav1.NewTime(t0)})
	assert.Empty(t, again.NodeChanges)
	assert.Empty(t, again.MachineConfigNodes)
	assert.Equal(t, d.Status, again.Status)

	// The daemon finishes n0: one more node is targeted, n0's MachineConfigNode does not change.
	after[0] = testNode("n0", workerRole(), on(cur))
	next := Decide(Inputs{Pool: pool, Nodes: after, MachineConfigNodes: mcns, Now: metav1.NewTime(t0)})
	assert.Equal(t, []string{"n2"}, names(next.Targeted()))
	require.Len(t, next.NodeChanges, 1, "n2 is targeted and loses its taint in one change")
	assert.True(t, next.NodeChanges[0].TaintsChanged)
	require.Len(t, next.MachineConfigNodes, 1)
	assert.Equal(t, "n2", next.MachineConfigNodes[0].Desired.Name)
	assert.Equal(t, "False True False 5 1 1 0", columnsOf(next.Status))
}

func TestDecideHolds(t *testing.T) {
	const old, cur, img = "rendered-worker-old", "rendered-worker-new", "quay.io/x/os@sha256:1"
	tests := []struct {
		name     string
		pool     *mcfgv1.MachineConfigPool
		layering *Layering
		want     Hold
		wantErr  bool
	}{
		{name: "paused", pool: paused(workerPool(cur)), want: HoldPaused},
		{name: "paused layered pool with a ready build", pool: paused(workerPool(cur)), want: HoldPaused,
			layering: &Layering{Config: mosc("m", "worker", img), Build: mosb("m-1", "m", cur, osbuild.StateSucceeded, img)}},
		{name: "layered, no build", pool: workerPool(cur), layering: &Layering{Config: mosc("m", "worker", "")}, want: HoldWaitingForBuild},
		{name: "layered, building", pool: workerPool(cur), want: HoldWaitingForBuild,
			layering: &Layering{Config: mosc("m", "worker", img), Build: mosb("m-1", "m", cur, osbuild.StateBuilding, "")}},
		{name: "layered, built but the MachineOSConfig does not name the image yet", pool: workerPool(cur), want: HoldWaitingForBuild,
			layering: &Layering{Config: mosc("m", "worker", img), Build: mosb("m-1", "m", cur, osbuild.StateSucceeded, "quay.io/x/os@sha256:2")}},
		{name: "layered, failed", pool: workerPool(cur), want: HoldWaitingForBuild,
			layering: &Layering{Config: mosc("m", "worker", img), Build: mosb("m-1", "m", cur, osbuild.StateFailed, "")}},
		{name: "invalid maxUnavailable", pool: withMaxUnavailable(workerPool(cur), intstr.FromString("lots")), want: HoldInvalidMaxUnavailable, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nodes := poolNodes(3, on(old), withImages(img, img))
			d := Decide(Inputs{Pool: tc.pool, Nodes: nodes, Layering: tc.layering, Now: metav1.NewTime(t0)})
			assert.Equal(t, tc.want, d.Hold)
			assert.Equal(t, tc.wantErr, d.Err != nil)
			assert.Empty(t, d.NodeChanges, "no node changes: no annotation, no taint")
			assert.Len(t, d.MachineConfigNodes, 3, "MachineConfigNodes still mirror the nodes")
			assert.Equal(t, int32(3), d.Status.MachineCount, "status is still computed")
		})
	}
}

func TestDecideLayered(t *testing.T) {
	const cfg, img1, img2 = "rendered-layered-a", "quay.io/x/os@sha256:1", "quay.io/x/os@sha256:2"
	pool := testPool("layered", map[string]string{"node-role.kubernetes.io/layered": ""}, cfg)
	l := &Layering{Config: mosc("layered", "layered", img2), Build: mosb("layered-1", "layered", cfg, osbuild.StateSucceeded, img2)}
	nodes := []*corev1.Node{testNode("a", on(cfg)), testNode("b", on(cfg), withImages(img1, img1))}
	d := Decide(Inputs{Pool: pool, Nodes: nodes, Layering: l, Now: metav1.NewTime(t0)})
	require.Equal(t, HoldNone, d.Hold)
	assert.Equal(t, Target{Config: cfg, Layered: true, Image: img2}, d.Target)
	assert.Equal(t, []string{"a"}, names(d.Targeted()), "maxUnavailable 1")
	after, _ := applyDecision(nodes, nil, d)
	assert.Equal(t, map[string]string{"a": cfg + " " + img2, "b": cfg + " " + img1}, desiredOf(after))
	assert.True(t, HasUpdateInProgressTaint(after[1]))
	assert.Contains(t, message(d.Status, mcfgv1.MachineConfigPoolUpdating), "Pool is waiting for nodes to apply OS image (mosb: layered-1)")
}

func TestDecideLeavingLayering(t *testing.T) {
	const cfg, img = "rendered-worker-a", "quay.io/x/os@sha256:1"
	// A node of a layered custom pool moved back to worker (its label removed): it still has desiredImage.
	nodes := []*corev1.Node{testNode("n", workerRole(), withConfigs("rendered-layered-a", "rendered-layered-a", wellknown.NodeStateDone), withImages(img, img))}
	d := Decide(Inputs{Pool: workerPool(cfg), Nodes: nodes, Now: metav1.NewTime(t0)})
	require.Equal(t, []string{"n"}, names(d.Targeted()))
	u := d.NodeChanges[0].Updated
	assert.Equal(t, cfg, u.Annotations[wellknown.DesiredConfigAnnotation])
	_, has := u.Annotations[wellknown.DesiredImageAnnotation]
	assert.False(t, has, "desiredImage is deleted")
	assert.Equal(t, img, u.Annotations[wellknown.CurrentImageAnnotation], "currentImage is the daemon's")

	// Same config name but still carrying the image (the MachineOSConfig was deleted): also retargeted.
	same := []*corev1.Node{testNode("n", workerRole(), on(cfg), withImages(img, img))}
	d = Decide(Inputs{Pool: workerPool(cfg), Nodes: same, Now: metav1.NewTime(t0)})
	assert.Equal(t, []string{"n"}, names(d.Targeted()))
}

func TestDecideTaints(t *testing.T) {
	const old, cur = "rendered-worker-old", "rendered-worker-new"
	nodes := []*corev1.Node{
		testNode("targeted-tainted", withConfigs(old, cur, wellknown.NodeStateWorking), tainted()),
		testNode("done-tainted", on(cur), tainted()),
		testNode("waiting-untainted", on(old), notReady()),
		testNode("waiting-tainted", on(old), notReady(), tainted()),
	}
	d := Decide(Inputs{Pool: workerPool(cur), Nodes: nodes, Now: metav1.NewTime(t0)})
	got := map[string]bool{}
	for _, c := range d.NodeChanges {
		assert.True(t, c.TaintsChanged)
		assert.False(t, c.Targeted, "maxUnavailable is used up by the unavailable nodes")
		got[c.Node.Name] = HasUpdateInProgressTaint(c.Updated)
	}
	assert.Equal(t, map[string]bool{"targeted-tainted": false, "done-tainted": false, "waiting-untainted": true}, got)
}

func TestPlanMachineConfigNodes(t *testing.T) {
	nodes := []*corev1.Node{testNode("fresh"), testNode("moved", on("rendered-worker-a")), testNode("same", on("rendered-worker-a"))}
	nodes[0].UID = "uid-fresh"
	existing := map[string]*mcfgv1.MachineConfigNode{
		"moved": {ObjectMeta: metav1.ObjectMeta{Name: "moved"}, Spec: mcfgv1.MachineConfigNodeSpec{
			Node: mcfgv1.MCOObjectReference{Name: "moved"}, Pool: mcfgv1.MCOObjectReference{Name: "worker-canary"},
			ConfigVersion: mcfgv1.MachineConfigNodeSpecMachineConfigVersion{Desired: "rendered-worker-a"}}},
		"same": {ObjectMeta: metav1.ObjectMeta{Name: "same"}, Spec: mcfgv1.MachineConfigNodeSpec{
			Node: mcfgv1.MCOObjectReference{Name: "same"}, Pool: mcfgv1.MCOObjectReference{Name: "worker"},
			ConfigVersion: mcfgv1.MachineConfigNodeSpecMachineConfigVersion{Desired: "rendered-worker-a"}}},
	}
	changes := planMachineConfigNodes("worker", nodes, existing)
	require.Len(t, changes, 2)
	assert.Nil(t, changes[0].Existing, "created")
	assert.Equal(t, NotYetSet, changes[0].Desired.Spec.ConfigVersion.Desired)
	assert.Equal(t, []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: "fresh", UID: "uid-fresh"}}, changes[0].Desired.OwnerReferences)
	assert.Equal(t, existing["moved"], changes[1].Existing)
	assert.Equal(t, "worker", changes[1].Desired.Spec.Pool.Name, "the pool follows the node")
}
