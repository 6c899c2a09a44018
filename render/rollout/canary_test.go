package rollout_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/examples"
	"github.com/imagemode/imagemode/internal/controlplane"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/render"
	"github.com/imagemode/imagemode/render/poolstatus"
	"github.com/imagemode/imagemode/render/renderer"
	. "github.com/imagemode/imagemode/render/rollout"
)

// mirrorIDMS is the docs' mirror.yaml of the recipe as an ImageDigestMirrorSet: the page's object is an
// ImageContentSourcePolicy under config.openshift.io/v1, a kind that group does not have; the recipe names
// ImageDigestMirrorSet as the alternative, with the same mirror.
const mirrorIDMS = `apiVersion: config.openshift.io/v1
kind: ImageDigestMirrorSet
metadata:
  name: my-mirror-config
spec:
  imageDigestMirrors:
  - mirrors:
    - my-registry.example.com/redhat/ubi8
    source: registry.access.redhat.com/ubi8
`

// TestDocsCanaryRecipe follows the docs' canary recipe with kubectl, on the controllers as the controller
// binary runs them (render.AddToManager), with the test playing every node's daemon: pause master and worker,
// label two workers, create the docs' worker-canary pool, add a mirror config: only the two canary nodes
// move. Unpause: the rest move. Remove the labels and delete the canary pool: the two nodes return to worker
// (to its rendered config, whose content equals the canary's) and no other node is touched.
func TestDocsCanaryRecipe(t *testing.T) {
	t.Parallel() // its own control plane
	cp := controlplane.Start(t, controlplane.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := cp.Client
	StartManager(ctx, t, cp, func(mgr ctrl.Manager) error { return render.AddToManager(mgr, render.Options{Version: "test-v1"}) })
	kubectl := func(stdin []byte, args ...string) {
		t.Helper()
		out, err := cp.Kubectl(ctx, stdin, args...)
		require.NoError(t, err, out)
	}

	// The cluster: base configs, the built-in pools, 3 masters and worker-1 … worker-10 on their configs.
	require.NoError(t, c.Create(ctx, renderer.NewControllerConfig("quay.io/openshift/rhcos@sha256:base", "quay.io/openshift/ext@sha256:base", "4.19.0")))
	for _, role := range []string{"master", "worker"} {
		require.NoError(t, c.Create(ctx, baseConfig("00-"+role, role)))
		require.NoError(t, c.Create(ctx, builtInPool(role)))
	}
	masterCfg, workerCfg := waitRendered(ctx, t, c, "master", ""), waitRendered(ctx, t, c, "worker", "")
	for i := 0; i < 3; i++ {
		CreateNode(ctx, t, c, fmt.Sprintf("master-%d", i), map[string]string{"node-role.kubernetes.io/master": ""}, OnConfig(masterCfg))
	}
	for i := 1; i <= 10; i++ {
		CreateNode(ctx, t, c, fmt.Sprintf("worker-%d", i), map[string]string{"node-role.kubernetes.io/worker": ""}, OnConfig(workerCfg))
	}
	WaitMCP(ctx, t, cp, "master", "True False False 3 3 3 0")
	WaitMCP(ctx, t, cp, "worker", "True False False 10 10 10 0")
	RunDaemon(ctx, t, c)

	// Step 1: pause master and worker (there is no infra pool); UPDATING stays False.
	kubectl(nil, "patch", "mcp", "master", "--type=merge", "-p", `{"spec":{"paused":true}}`)
	kubectl(nil, "patch", "mcp", "worker", "--type=merge", "-p", `{"spec":{"paused":true}}`)
	// Step 2: label the target nodes.
	kubectl(nil, "label", "node", "worker-9", "canary-update-group=true")
	kubectl(nil, "label", "node", "worker-10", "canary-update-group=true")
	// Step 3: the docs' pool; MACHINECOUNT 2 for worker-canary, 2 less for worker.
	poolYAML, err := examples.Doc(examples.MachineConfigPoolWorkerCanary)
	require.NoError(t, err)
	kubectl(poolYAML, "apply", "-f", "-")
	canaryCfg := waitRendered(ctx, t, c, "worker-canary", "")
	WaitMCP(ctx, t, cp, "worker-canary", "True False False 2 2 2 0")
	WaitMCP(ctx, t, cp, "worker", "True False False 8 8 8 0")
	assert.Equal(t, strings.TrimPrefix(workerCfg, "rendered-worker-"), strings.TrimPrefix(canaryCfg, "rendered-worker-canary-"),
		"the canary pool renders the worker configs: same content")
	for _, n := range []string{"worker-9", "worker-10"} {
		assert.Equal(t, canaryCfg, node(ctx, t, c, n).Annotations[wellknown.CurrentConfigAnnotation])
	}

	// Step 4: a mirror config. Only the canary pool is active, so only its nodes move.
	kubectl([]byte(mirrorIDMS), "apply", "-f", "-")
	canaryNew := waitRendered(ctx, t, c, "worker-canary", canaryCfg)
	workerNew := waitRendered(ctx, t, c, "worker", workerCfg)
	masterNew := waitRendered(ctx, t, c, "master", masterCfg)
	// Step 5: worker-canary updates (UPDATEDMACHINECOUNT reaches 2).
	WaitFor(ctx, t, "worker-canary to complete", func(ctx context.Context) (bool, error) {
		return PoolStatus(ctx, t, c, "worker-canary").Status.Configuration.Name == canaryNew, nil
	})
	WaitMCP(ctx, t, cp, "worker-canary", "True False False 2 2 2 0")
	WaitMCP(ctx, t, cp, "worker", "False False False 8 0 0 0")
	WaitMCP(ctx, t, cp, "master", "False False False 3 0 0 0")
	assert.Equal(t, "Pool is paused; will not update to MachineConfig "+workerNew, updating(ctx, t, c, "worker"))
	cols, err := GetMCP(ctx, cp, "worker")
	require.NoError(t, err)
	assert.Equal(t, workerCfg, cols["CONFIG"])
	for i := 1; i <= 8; i++ {
		n := node(ctx, t, c, fmt.Sprintf("worker-%d", i))
		assert.Equal(t, workerCfg, n.Annotations[wellknown.DesiredConfigAnnotation], "%s must not move while worker is paused", n.Name)
		assert.False(t, HasUpdateInProgressTaint(n), "%s: a paused pool changes nothing", n.Name)
	}
	for i := 0; i < 3; i++ {
		assert.Equal(t, masterCfg, node(ctx, t, c, fmt.Sprintf("master-%d", i)).Annotations[wellknown.DesiredConfigAnnotation])
	}

	// Step 6, scenario A: unpause; the rest move.
	kubectl(nil, "patch", "mcp", "worker", "--type=merge", "-p", `{"spec":{"paused":false}}`)
	kubectl(nil, "patch", "mcp", "master", "--type=merge", "-p", `{"spec":{"paused":false}}`)
	WaitMCP(ctx, t, cp, "worker", "True False False 8 8 8 0")
	WaitMCP(ctx, t, cp, "master", "True False False 3 3 3 0")
	assert.Equal(t, workerNew, PoolStatus(ctx, t, c, "worker").Status.Configuration.Name)
	assert.Equal(t, masterNew, PoolStatus(ctx, t, c, "master").Status.Configuration.Name)

	// Clean-up: remove the labels, delete the pool; the nodes return to worker. The other workers are not
	// touched at all.
	versions := map[string]string{}
	for i := 1; i <= 8; i++ {
		n := node(ctx, t, c, fmt.Sprintf("worker-%d", i))
		versions[n.Name] = n.ResourceVersion
	}
	kubectl(nil, "label", "node", "worker-9", "canary-update-group-")
	kubectl(nil, "label", "node", "worker-10", "canary-update-group-")
	kubectl(nil, "delete", "mcp", "worker-canary")
	WaitMCP(ctx, t, cp, "worker", "True False False 10 10 10 0")
	for _, name := range []string{"worker-9", "worker-10"} {
		n := node(ctx, t, c, name)
		assert.Equal(t, workerNew, n.Annotations[wellknown.CurrentConfigAnnotation])
		assert.False(t, HasUpdateInProgressTaint(n))
	}
	assert.Equal(t, strings.TrimPrefix(workerNew, "rendered-worker-"), strings.TrimPrefix(canaryNew, "rendered-worker-canary-"),
		"returning to worker changes no content: the daemon has nothing to apply")
	for name, rv := range versions {
		assert.Equal(t, rv, node(ctx, t, c, name).ResourceVersion, "%s was touched by the clean-up", name)
	}
	mcn := &mcfgv1.MachineConfigNode{}
	require.NoError(t, c.Get(ctx, types.NamespacedName{Name: "worker-9"}, mcn))
	WaitFor(ctx, t, "worker-9's MachineConfigNode back in worker", func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, types.NamespacedName{Name: "worker-9"}, mcn); err != nil {
			return false, err
		}
		return mcn.Spec.Pool.Name == "worker" && mcn.Spec.ConfigVersion.Desired == workerNew, nil
	})
}

func baseConfig(name, role string) *mcfgv1.MachineConfig {
	return &mcfgv1.MachineConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{wellknown.RoleLabel: role}},
		Spec: mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{
			Raw: []byte(`{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/` + role + `","contents":{"source":"data:,` + role + `"},"mode":420}]}}`),
		}},
	}
}

func builtInPool(role string) *mcfgv1.MachineConfigPool {
	return &mcfgv1.MachineConfigPool{
		ObjectMeta: metav1.ObjectMeta{Name: role, Labels: map[string]string{wellknown.BuiltInPoolLabel: ""}},
		Spec: mcfgv1.MachineConfigPoolSpec{
			MachineConfigSelector: &metav1.LabelSelector{MatchLabels: map[string]string{wellknown.RoleLabel: role}},
			NodeSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{"node-role.kubernetes.io/" + role: ""}},
		},
	}
}

// waitRendered waits until pool's spec.configuration names a rendered config other than not.
func waitRendered(ctx context.Context, t *testing.T, c client.Client, pool, not string) string {
	t.Helper()
	var name string
	WaitFor(ctx, t, "pool "+pool+" rendered", func(ctx context.Context) (bool, error) {
		p := &mcfgv1.MachineConfigPool{}
		if err := c.Get(ctx, types.NamespacedName{Name: pool}, p); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		name = p.Spec.Configuration.Name
		return name != "" && name != not, nil
	})
	return name
}

func node(ctx context.Context, t *testing.T, c client.Client, name string) *corev1.Node {
	t.Helper()
	n := &corev1.Node{}
	require.NoError(t, c.Get(ctx, types.NamespacedName{Name: name}, n))
	return n
}

func updating(ctx context.Context, t *testing.T, c client.Client, pool string) string {
	t.Helper()
	p := PoolStatus(ctx, t, c, pool)
	if cond := poolstatus.FindCondition(&p.Status, mcfgv1.MachineConfigPoolUpdating); cond != nil {
		return cond.Message
	}
	return ""
}
