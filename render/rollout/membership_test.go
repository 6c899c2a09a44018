package rollout

import (
	"errors"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPoolsForNode(t *testing.T) {
	master := testPool("master", map[string]string{"node-role.kubernetes.io/master": ""}, "rendered-master-1")
	worker := workerPool("rendered-worker-1")
	infra := testPool("infra", map[string]string{"node-role.kubernetes.io/infra": ""}, "rendered-infra-1")
	canary := testPool("worker-canary", map[string]string{"canary-update-group": "true"}, "rendered-worker-canary-1")
	emptySel := testPool("everything", map[string]string{}, "rendered-everything-1")
	noSel := testPool("nothing", nil, "rendered-nothing-1")
	all := []*mcfgv1.MachineConfigPool{master, worker, infra, canary, emptySel, noSel}

	tests := []struct {
		name      string
		node      *corev1.Node
		want      []string
		wantMulti []string
	}{
		{name: "worker only", node: testNode("w", workerRole()), want: []string{"worker"}},
		{name: "master only", node: testNode("m", withLabel("node-role.kubernetes.io/master", "")), want: []string{"master"}},
		{name: "master and worker: master", node: testNode("m", withLabel("node-role.kubernetes.io/master", ""), workerRole()), want: []string{"master"}},
		{name: "custom beats worker", node: testNode("i", workerRole(), withLabel("node-role.kubernetes.io/infra", "")), want: []string{"infra", "worker"}},
		{name: "custom without worker", node: testNode("i", withLabel("node-role.kubernetes.io/infra", "")), want: []string{"infra"}},
		{name: "master beats custom", node: testNode("m", withLabel("node-role.kubernetes.io/master", ""), withLabel("node-role.kubernetes.io/infra", "")), want: []string{"master"}},
		{name: "canary label moves a worker into the canary pool", node: testNode("w9", workerRole(), withLabel("canary-update-group", "true")), want: []string{"worker-canary", "worker"}},
		{
			name:      "two custom pools: error, no pool",
			node:      testNode("x", workerRole(), withLabel("node-role.kubernetes.io/infra", ""), withLabel("canary-update-group", "true")),
			wantMulti: []string{"infra", "worker-canary"},
		},
		{name: "windows nodes are never managed", node: testNode("win", workerRole(), withLabel(corev1.LabelOSStable, "windows")), want: nil},
		{name: "no pool selects it; empty and missing selectors select nothing", node: testNode("lonely", withLabel("x", "y")), want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PoolsForNode(tc.node, all)
			if tc.wantMulti != nil {
				var multi *MultipleCustomPoolsError
				require.True(t, errors.As(err, &multi), "want MultipleCustomPoolsError, got %v", err)
				assert.Equal(t, tc.wantMulti, multi.Pools)
				assert.Nil(t, got)
				return
			}
			require.NoError(t, err)
			var gotNames []string
			for _, p := range got {
				gotNames = append(gotNames, p.Name)
			}
			assert.Equal(t, tc.want, gotNames)
		})
	}
}

func TestNodesForPool(t *testing.T) {
	worker := workerPool("rendered-worker-1")
	canary := testPool("worker-canary", map[string]string{"canary-update-group": "true"}, "rendered-worker-canary-1")
	infra := testPool("infra", map[string]string{"node-role.kubernetes.io/infra": ""}, "rendered-infra-1")
	exprPool := testPool("expr", nil, "rendered-expr-1")
	exprPool.Spec.NodeSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"gold"}},
	}}
	nodes := []*corev1.Node{
		testNode("w1", workerRole()),
		testNode("w2", workerRole(), withLabel("canary-update-group", "true")),
		testNode("w3", workerRole(), withLabel("canary-update-group", "true"), withLabel("node-role.kubernetes.io/infra", "")),
		testNode("g1", withLabel("tier", "gold")),
	}
	set := NewPoolSet([]*mcfgv1.MachineConfigPool{worker, canary, infra, exprPool})

	tests := []struct {
		name     string
		pool     string
		want     []string
		wantErrs int
	}{
		{name: "worker keeps only nodes whose primary pool it is", pool: "worker", want: []string{"w1"}, wantErrs: 1},
		{name: "canary pool", pool: "worker-canary", want: []string{"w2"}, wantErrs: 1},
		{name: "infra: the doubly-selected node is reported, not managed", pool: "infra", want: []string{}, wantErrs: 1},
		{name: "match expressions", pool: "expr", want: []string{"g1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, errs := NodesForPool(tc.pool, nodes, set)
			assert.Equal(t, tc.want, names(got))
			assert.Len(t, errs, tc.wantErrs)
		})
	}

	// Removing the canary label moves the node back to worker.
	w2 := nodes[1].DeepCopy()
	delete(w2.Labels, "canary-update-group")
	got, _ := NodesForPool("worker", []*corev1.Node{nodes[0], w2}, set)
	assert.Equal(t, []string{"w1", "w2"}, names(got))
}
