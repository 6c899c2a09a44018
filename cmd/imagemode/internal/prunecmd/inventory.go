package prunecmd

import (
	"context"
	"fmt"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/render/prune"
)

// LoadInventory lists what a prune decision reads. MachineOSBuilds and MachineConfigNodes are optional: a
// cluster that does not serve them has none, so none can reference a config. Any other failure, including
// being forbidden to list one of them, is an error: the decision would not be safe without them.
func LoadInventory(ctx context.Context, c client.Reader) (prune.Inventory, error) {
	var (
		configs mcfgv1.MachineConfigList
		pools   mcfgv1.MachineConfigPoolList
		nodes   corev1.NodeList
		builds  mcfgv1.MachineOSBuildList
		mcns    mcfgv1.MachineConfigNodeList
	)
	lists := []struct {
		kind     string
		list     client.ObjectList
		optional bool
	}{
		{"MachineConfigs", &configs, false},
		{"MachineConfigPools", &pools, false},
		{"Nodes", &nodes, false},
		{"MachineOSBuilds", &builds, true},
		{"MachineConfigNodes", &mcns, true},
	}
	for _, l := range lists {
		if err := c.List(ctx, l.list); err != nil {
			if l.optional && meta.IsNoMatchError(err) {
				continue
			}
			return prune.Inventory{}, fmt.Errorf("listing %s: %w", l.kind, err)
		}
	}
	return prune.Inventory{
		Configs:            configs.Items,
		Pools:              pools.Items,
		Nodes:              nodes.Items,
		MachineOSBuilds:    builds.Items,
		MachineConfigNodes: mcns.Items,
	}, nil
}
