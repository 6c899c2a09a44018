package plancmd

import (
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	operatorv1 "github.com/openshift/api/operator/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/internal/scheme"
	"github.com/imagemode/imagemode/internal/wellknown"
)

// change makes a Change of objects, as ParseChange would return them.
func change(t *testing.T, del bool, objs ...client.Object) Change {
	t.Helper()
	c := Change{Delete: del}
	for i, o := range objs {
		gvks, _, err := scheme.New().ObjectKinds(o)
		require.NoError(t, err)
		o.GetObjectKind().SetGroupVersionKind(gvks[0])
		c.Documents = append(c.Documents, Document{Source: "test", Index: i + 1, Object: o})
	}
	return c
}

func loadSnapshot(t *testing.T) *State {
	t.Helper()
	s, err := LoadDir(clusterDir)
	require.NoError(t, err)
	return s
}

func TestComputeEdges(t *testing.T) {
	t.Run("a new custom pool takes the workers; a node in two custom pools is reported", func(t *testing.T) {
		infra := fixturePool("infra", "worker", "infra")
		infra.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"node-role.kubernetes.io/worker": ""}}
		p, err := Compute(loadSnapshot(t), change(t, false, infra), Options{})
		require.NoError(t, err)
		var pp PoolPlan
		for _, x := range p.Pools {
			if x.Pool == "infra" {
				pp = x
			}
		}
		require.Equal(t, "infra", pp.Pool)
		assert.True(t, pp.Affected)
		assert.Empty(t, pp.CurrentConfig)
		require.Len(t, pp.Nodes, 4)
		assert.Equal(t, "layered-0", pp.Nodes[0].Node)
		assert.Contains(t, pp.Nodes[0].Error, "layered-image")
		assert.Equal(t, NodePlan{Node: "worker-0", CurrentConfig: pp.Nodes[1].CurrentConfig, Actions: []string{"None"}}, pp.Nodes[1],
			"infra renders what worker renders: moving changes nothing on the node")
		for _, x := range p.Pools {
			if x.Pool == "worker" {
				require.Len(t, x.Nodes, 1, "worker's nodes moved to infra")
				assert.Contains(t, x.Nodes[0].Error, "2 custom pools")
			}
		}
	})
	t.Run("an unreconcilable change: the pool cannot render", func(t *testing.T) {
		fips := baseConfig("99-worker-fips", "worker")
		fips.Spec.FIPS = true
		p, err := Compute(loadSnapshot(t), change(t, false, fips), Options{})
		require.NoError(t, err)
		for _, x := range p.Pools {
			if x.Pool != "worker" {
				continue
			}
			assert.True(t, x.Affected)
			assert.Contains(t, x.RenderError, "spec.fips")
			assert.Contains(t, x.RenderError, "99-worker-fips", "the render names the culprit")
			assert.Empty(t, x.NewConfig)
			assert.Equal(t, "the pool cannot be rendered", x.Nodes[0].Error)
		}
	})
	t.Run("a paused pool is said to be paused", func(t *testing.T) {
		s := loadSnapshot(t)
		worker := find(s.Pools, "worker").DeepCopy()
		worker.Spec.Paused = true
		worker.Spec.Configuration = mcfgv1.MachineConfigPoolStatusConfiguration{} // a user's YAML has none: kept
		extra := baseConfig("99-worker-extra", "worker")
		extra.Spec.KernelArguments = []string{"quiet"}
		p, err := Compute(s, change(t, false, worker, extra), Options{})
		require.NoError(t, err)
		for _, x := range p.Pools {
			if x.Pool == "worker" {
				assert.True(t, x.Paused)
				assert.Equal(t, find(s.Pools, "worker").Spec.Configuration.Name, x.CurrentConfig)
				assert.True(t, x.ConfigChanged)
			}
		}
	})
	t.Run("the cluster's node disruption policies are used", func(t *testing.T) {
		s := loadSnapshot(t)
		s.MachineConfiguration = &operatorv1.MachineConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "cluster"}}
		s.MachineConfiguration.Spec.NodeDisruptionPolicy.Files = []operatorv1.NodeDisruptionPolicySpecFile{{Path: "/etc/imagemode",
			Actions: []operatorv1.NodeDisruptionPolicySpecAction{{Type: operatorv1.RestartSpecAction,
				Restart: &operatorv1.RestartService{ServiceName: "chronyd.service"}}}}}
		mc := baseConfig("00-master", "master")
		mc.Spec.Config = runtime.RawExtension{Raw: []byte(`{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/imagemode/role","mode":420,"contents":{"source":"data:,control-plane%0A"}}]}}`)}
		p, err := Compute(s, change(t, false, mc), Options{})
		require.NoError(t, err)
		require.Equal(t, "master", p.Pools[1].Pool)
		assert.Equal(t, []string{"Restart chronyd.service"}, p.Pools[1].Nodes[0].Actions)
		assert.False(t, p.Pools[1].Nodes[0].Drain)
	})
	t.Run("a pool left without configs cannot render", func(t *testing.T) {
		s := loadSnapshot(t)
		named := func(name string) *mcfgv1.MachineConfig {
			return &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{wellknown.RoleLabel: "master"}}}
		}
		p, err := Compute(s, change(t, true, named("00-master"), named("99-master-generated-registries")), Options{})
		require.NoError(t, err)
		assert.Contains(t, p.Pools[1].RenderError, "no MachineConfigs found")
	})
}
