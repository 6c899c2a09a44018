package rollout

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/internal/controlplane"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/render/poolstatus"
)

func setupRollout(mgr ctrl.Manager) error {
	return (&Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("machineconfigcontroller-nodecontroller")}).SetupWithManager(mgr)
}

func setPoolConfig(ctx context.Context, t *testing.T, c client.Client, pool, config string, mutate func(*mcfgv1.MachineConfigPool)) {
	t.Helper()
	p := PoolStatus(ctx, t, c, pool)
	before := p.DeepCopy()
	if config != "" {
		p.Spec.Configuration.Name = config
	}
	if mutate != nil {
		mutate(p)
	}
	require.NoError(t, c.Patch(ctx, p, client.MergeFrom(before)))
}

// rolloutState splits the pool's nodes: targeted (desired = config, not yet applied), done (running config)
// and other; it also returns the nodes carrying the UpdateInProgress taint.
func rolloutState(ctx context.Context, c client.Client, config string) (targeted, done, other, tainted []string, err error) {
	var nodes corev1.NodeList
	if err = c.List(ctx, &nodes); err != nil {
		return
	}
	for i := range nodes.Items {
		n := &nodes.Items[i]
		switch {
		case n.Annotations[wellknown.DesiredConfigAnnotation] == config && NeedsDaemon(n):
			targeted = append(targeted, n.Name)
		case n.Annotations[wellknown.CurrentConfigAnnotation] == config && !NeedsDaemon(n):
			done = append(done, n.Name)
		default:
			other = append(other, n.Name)
		}
		if HasUpdateInProgressTaint(n) {
			tainted = append(tainted, n.Name)
		}
	}
	sort.Strings(targeted)
	return
}

// TestRolloutOnAPIServer rolls a 10-node pool out two nodes at a time (maxUnavailable 2) on a real API
// server, the test playing the daemon; then pauses the pool and checks it holds.
func TestRolloutOnAPIServer(t *testing.T) {
	t.Parallel() // its own control plane
	cp := controlplane.Start(t, controlplane.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := cp.Client
	StartManager(ctx, t, cp, setupRollout)

	const old, cur, newer = "rendered-worker-0001", "rendered-worker-0002", "rendered-worker-0003"
	pool := workerPool(old)
	pool.Generation = 0
	pool.Spec.MaxUnavailable = new(intstr.FromInt32(2))
	require.NoError(t, c.Create(ctx, pool))
	// Zones: four nodes in zone-a, four in zone-b, two without a zone (created in reverse order, so that
	// age does not simply follow the names).
	zoneOf := func(i int) string { return []string{"zone-a", "zone-b", ""}[min(i/4, 2)] }
	for i := 9; i >= 0; i-- {
		labels := map[string]string{"node-role.kubernetes.io/worker": ""}
		if z := zoneOf(i); z != "" {
			labels[corev1.LabelTopologyZone] = z
		}
		CreateNode(ctx, t, c, fmt.Sprintf("worker-%d", i), labels, OnConfig(old))
	}
	WaitMCP(ctx, t, cp, "worker", "True False False 10 10 10 0")

	setPoolConfig(ctx, t, c, "worker", cur, nil)
	// Expected batches: zone-a's nodes first, then zone-b's, then the zoneless ones (age order within a zone is
	// covered by the table tests: creation timestamps have one-second resolution).
	batches := [][]string{{"worker-0", "worker-1", "worker-2", "worker-3"}, {"worker-0", "worker-1", "worker-2", "worker-3"},
		{"worker-4", "worker-5", "worker-6", "worker-7"}, {"worker-4", "worker-5", "worker-6", "worker-7"}, {"worker-8", "worker-9"}}
	for i, batch := range batches {
		var targeted, done, tainted []string
		WaitFor(ctx, t, fmt.Sprintf("batch %d targeted", i), func(ctx context.Context) (bool, error) {
			var err error
			targeted, done, _, tainted, err = rolloutState(ctx, c, cur)
			require.NoError(t, err)
			require.LessOrEqual(t, len(targeted), 2, "maxUnavailable 2 exceeded: %v", targeted)
			// The taints follow the targeting in their own writes: wait for both to settle.
			return len(targeted) == 2 && len(done) == 2*i && len(tainted) == 10-2*(i+1), nil
		})
		assert.Subset(t, batch, targeted, "batch %d: zone order", i)
		assert.Len(t, tainted, 10-2*(i+1), "every node not yet targeting the config is tainted, and only those")
		for _, n := range targeted {
			assert.NotContains(t, tainted, n)
		}
		if i == 0 {
			assert.Zero(t, WritesOfOnePass(ctx, t, cp, "worker"), "a pass over unchanged state (mid-rollout) writes nothing")
			WaitMCP(ctx, t, cp, "worker", "False True False 10 0 0 0")
		}
		if i == 1 {
			// Two nodes done, two updating: as the docs' `oc get mcp` during an update.
			WaitMCP(ctx, t, cp, "worker", "False True False 10 2 2 0")
			cols, err := GetMCP(ctx, cp, "worker")
			require.NoError(t, err)
			assert.Equal(t, old, cols["CONFIG"], "CONFIG is the config the pool updates from until every node is done")
		}
		PlayDaemon(ctx, t, c, targeted...)
	}
	WaitMCP(ctx, t, cp, "worker", "True False False 10 10 10 0")
	p := PoolStatus(ctx, t, c, "worker")
	assert.Equal(t, cur, p.Status.Configuration.Name)
	assert.Equal(t, "All nodes are updated with MachineConfig "+cur, poolstatus.FindCondition(&p.Status, mcfgv1.MachineConfigPoolUpdated).Message)
	_, _, _, tainted, err := rolloutState(ctx, c, cur)
	require.NoError(t, err)
	assert.Empty(t, tainted, "no taint left")
	assert.Zero(t, WritesOfOnePass(ctx, t, cp, "worker"), "a pass over unchanged state writes nothing")

	var mcns mcfgv1.MachineConfigNodeList
	require.NoError(t, c.List(ctx, &mcns))
	require.Len(t, mcns.Items, 10, "a MachineConfigNode per node")
	for _, m := range mcns.Items {
		assert.Equal(t, cur, m.Spec.ConfigVersion.Desired, m.Name)
		assert.Equal(t, "worker", m.Spec.Pool.Name, m.Name)
	}
	WaitFor(ctx, t, "SetDesiredConfig and Completed events", func(ctx context.Context) (bool, error) {
		evs := strings.Join(EventReasons(ctx, t, cp, "worker"), "\n")
		return strings.Contains(evs, "SetDesiredConfig: Set target for 2 nodes to MachineConfig: "+cur) &&
			strings.Contains(evs, "Completed: Pool worker has completed update to MachineConfig "+cur), nil
	})

	// Paused: a new config is rendered, no node changes; the status says so.
	setPoolConfig(ctx, t, c, "worker", newer, func(p *mcfgv1.MachineConfigPool) { p.Spec.Paused = true })
	WaitMCP(ctx, t, cp, "worker", "False False False 10 0 0 0")
	p = PoolStatus(ctx, t, c, "worker")
	assert.Equal(t, "Pool is paused; will not update to MachineConfig "+newer, poolstatus.FindCondition(&p.Status, mcfgv1.MachineConfigPoolUpdating).Message)
	assert.Equal(t, cur, p.Status.Configuration.Name)
	targeted, done, _, tainted, err := rolloutState(ctx, c, cur)
	require.NoError(t, err)
	assert.Empty(t, targeted)
	assert.Len(t, done, 10, "a paused pool changes no node")
	assert.Empty(t, tainted, "a paused pool taints no node")
	assert.Zero(t, WritesOfOnePass(ctx, t, cp, "worker"))

	// Unpaused: it moves on, two at a time.
	setPoolConfig(ctx, t, c, "worker", "", func(p *mcfgv1.MachineConfigPool) { p.Spec.Paused = false })
	WaitFor(ctx, t, "first batch after unpausing", func(ctx context.Context) (bool, error) {
		targeted, _, _, _, err := rolloutState(ctx, c, newer)
		require.LessOrEqual(t, len(targeted), 2)
		return len(targeted) == 2, err
	})
}

// TestLayeredRolloutOnAPIServer: the docs' MachineOSConfig for pool layered-image; builds are created by
// hand (the build service does this in production). Nodes move only once the build for the pool's config
// has succeeded and the MachineOSConfig names its image; a node leaving the pool loses desiredImage.
func TestLayeredRolloutOnAPIServer(t *testing.T) {
	t.Parallel() // its own control plane
	cp := controlplane.Start(t, controlplane.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := cp.Client
	StartManager(ctx, t, cp, setupRollout)

	const workerCfg, layeredCfg = "rendered-worker-0001", "rendered-layered-image-0001"
	image := "image-registry.openshift-image-registry.svc:5000/openshift/os-image@sha256:" + strings.Repeat("3c", 32)
	require.NoError(t, c.Create(ctx, workerPool(workerCfg)))
	require.NoError(t, c.Create(ctx, testPool("layered-image", map[string]string{"node-role.kubernetes.io/layered-image": ""}, layeredCfg)))
	for i := 0; i < 3; i++ {
		CreateNode(ctx, t, c, fmt.Sprintf("node-%d", i), map[string]string{"node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/layered-image": ""}, OnConfig(layeredCfg))
	}
	CreateNode(ctx, t, c, "plain", map[string]string{"node-role.kubernetes.io/worker": ""}, OnConfig(workerCfg))
	WaitMCP(ctx, t, cp, "layered-image", "True False False 3 3 3 0")
	WaitMCP(ctx, t, cp, "worker", "True False False 1 1 1 0")

	// The docs' MachineOSConfig, applied as a user does.
	raw, err := docMachineOSConfig()
	require.NoError(t, err)
	out, err := cp.Kubectl(ctx, raw, "apply", "-f", "-")
	require.NoError(t, err, out)
	WaitMCP(ctx, t, cp, "layered-image", "False True False 3 0 0 0")
	assert.Equal(t, "Pool is waiting for a new OS image build to start (mosc: layered-image)", updatingMessage(ctx, t, c, "layered-image"))

	build := &mcfgv1.MachineOSBuild{
		ObjectMeta: metav1.ObjectMeta{Name: "layered-image-c8765e26ebc87e1e17a7d6e0a78e8bae"},
		Spec: mcfgv1.MachineOSBuildSpec{
			MachineConfig:         mcfgv1.MachineConfigReference{Name: layeredCfg},
			MachineOSConfig:       mcfgv1.MachineOSConfigReference{Name: "layered-image"},
			RenderedImagePushSpec: "image-registry.openshift-image-registry.svc:5000/openshift/os-image:layered-image-c8765e26ebc87e1e17a7d6e0a78e8bae",
		},
	}
	require.NoError(t, c.Create(ctx, build))
	setBuildState(ctx, t, c, build.Name, "Building", "")
	WaitFor(ctx, t, "waiting-for-build message", func(ctx context.Context) (bool, error) {
		return updatingMessage(ctx, t, c, "layered-image") == "Pool is waiting for OS image build to complete (mosb: "+build.Name+")", nil
	})
	for _, n := range nodeList(ctx, t, c) {
		_, has := n.Annotations[wellknown.DesiredImageAnnotation]
		assert.False(t, has, "no desiredImage before the build succeeded (%s)", n.Name)
		assert.False(t, HasUpdateInProgressTaint(n), "a pool waiting for its build changes no node (%s)", n.Name)
	}

	// Succeeded, but the MachineOSConfig does not name the image yet: still nothing moves.
	setBuildState(ctx, t, c, build.Name, "Succeeded", image)
	WaitFor(ctx, t, "waiting for the MachineOSConfig", func(ctx context.Context) (bool, error) {
		return updatingMessage(ctx, t, c, "layered-image") == "Pool is waiting for nodes to apply OS image (mosb: "+build.Name+")", nil
	})
	assert.Zero(t, WritesOfOnePass(ctx, t, cp, "layered-image"))

	mosc := &mcfgv1.MachineOSConfig{}
	require.NoError(t, c.Get(ctx, types.NamespacedName{Name: "layered-image"}, mosc))
	before := mosc.DeepCopy()
	mosc.Annotations = map[string]string{wellknown.CurrentMachineOSBuildAnnotation: build.Name}
	require.NoError(t, c.Patch(ctx, mosc, client.MergeFrom(before)))
	mosc.Status.CurrentImagePullSpec = mcfgv1.ImageDigestFormat(image)
	require.NoError(t, c.Status().Update(ctx, mosc))

	moved := 0
	for moved < 3 {
		var targeted []string
		WaitFor(ctx, t, "a node targeted to the image", func(ctx context.Context) (bool, error) {
			targeted = nil
			for _, n := range nodeList(ctx, t, c) {
				if n.Annotations[wellknown.DesiredImageAnnotation] == image && NeedsDaemon(n) {
					targeted = append(targeted, n.Name)
				}
			}
			require.LessOrEqual(t, len(targeted), 1, "maxUnavailable 1")
			return len(targeted) == 1, nil
		})
		n := &corev1.Node{}
		require.NoError(t, c.Get(ctx, types.NamespacedName{Name: targeted[0]}, n))
		assert.Equal(t, layeredCfg, n.Annotations[wellknown.DesiredConfigAnnotation])
		PlayDaemon(ctx, t, c, targeted...)
		moved++
	}
	WaitMCP(ctx, t, cp, "layered-image", "True False False 3 3 3 0")
	p := PoolStatus(ctx, t, c, "layered-image")
	assert.Equal(t, "All nodes are updated with MachineConfig "+layeredCfg+" / Image "+image, poolstatus.FindCondition(&p.Status, mcfgv1.MachineConfigPoolUpdated).Message)
	assert.Zero(t, WritesOfOnePass(ctx, t, cp, "layered-image"))
	WaitFor(ctx, t, "SetDesiredConfigAndOSImage event", func(ctx context.Context) (bool, error) {
		evs := strings.Join(EventReasons(ctx, t, cp, "layered-image"), "\n")
		return strings.Contains(evs, "SetDesiredConfigAndOSImage: Targeted node node-"), nil
	})
	plain := &corev1.Node{}
	require.NoError(t, c.Get(ctx, types.NamespacedName{Name: "plain"}, plain))
	_, has := plain.Annotations[wellknown.DesiredImageAnnotation]
	assert.False(t, has, "nodes of other pools are not layered")

	// Remove node-2 from the layered pool: back in worker, without desiredImage.
	out, err = cp.Kubectl(ctx, nil, "label", "node", "node-2", "node-role.kubernetes.io/layered-image-")
	require.NoError(t, err, out)
	WaitFor(ctx, t, "node-2 retargeted to worker", func(ctx context.Context) (bool, error) {
		n := &corev1.Node{}
		if err := c.Get(ctx, types.NamespacedName{Name: "node-2"}, n); err != nil {
			return false, err
		}
		_, has := n.Annotations[wellknown.DesiredImageAnnotation]
		return n.Annotations[wellknown.DesiredConfigAnnotation] == workerCfg && !has, nil
	})
	PlayDaemon(ctx, t, c, "node-2")
	WaitMCP(ctx, t, cp, "worker", "True False False 2 2 2 0")
	WaitMCP(ctx, t, cp, "layered-image", "True False False 2 2 2 0")
	n := &corev1.Node{}
	require.NoError(t, c.Get(ctx, types.NamespacedName{Name: "node-2"}, n))
	_, has = n.Annotations[wellknown.CurrentImageAnnotation]
	assert.False(t, has, "the daemon reverted the node to the stock image")

	// A node two custom pools select belongs to none: reported on the node and the pools, left alone.
	require.NoError(t, c.Create(ctx, testPool("infra", map[string]string{"node-role.kubernetes.io/infra": ""}, "rendered-infra-0001")))
	require.NoError(t, c.Create(ctx, testPool("gpu", map[string]string{"gpu": "true"}, "rendered-gpu-0001")))
	out, err = cp.Kubectl(ctx, nil, "label", "node", "plain", "node-role.kubernetes.io/infra=", "gpu=true")
	require.NoError(t, err, out)
	WaitMCP(ctx, t, cp, "worker", "True False False 1 1 1 0")
	WaitMCP(ctx, t, cp, "infra", "True False False 0 0 0 0")
	WaitMCP(ctx, t, cp, "gpu", "True False False 0 0 0 0")
	WaitFor(ctx, t, "MultipleCustomPools events", func(ctx context.Context) (bool, error) {
		onNode := strings.Join(EventReasons(ctx, t, cp, "plain"), "\n")
		onPool := strings.Join(EventReasons(ctx, t, cp, "infra"), "\n")
		want := "MultipleCustomPools: node plain belongs to 2 custom pools (gpu, infra), cannot proceed with this node"
		return strings.Contains(onNode, want) && strings.Contains(onPool, want), nil
	})
	require.NoError(t, c.Get(ctx, types.NamespacedName{Name: "plain"}, plain))
	assert.Equal(t, workerCfg, plain.Annotations[wellknown.DesiredConfigAnnotation], "the node is left alone")
	assert.False(t, HasUpdateInProgressTaint(plain))
}

func nodeList(ctx context.Context, t *testing.T, c client.Client) []*corev1.Node {
	t.Helper()
	var nodes corev1.NodeList
	require.NoError(t, c.List(ctx, &nodes))
	return ptrs(nodes.Items)
}

func updatingMessage(ctx context.Context, t *testing.T, c client.Client, pool string) string {
	t.Helper()
	p := PoolStatus(ctx, t, c, pool)
	if cond := poolstatus.FindCondition(&p.Status, mcfgv1.MachineConfigPoolUpdating); cond != nil {
		return cond.Message
	}
	return ""
}
