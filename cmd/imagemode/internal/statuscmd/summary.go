package statuscmd

import (
	"context"
	"fmt"
	"sort"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/cmd/imagemode/internal/printers"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos/osbuild"
)

// Status is what `imagemode status` shows; -o json|yaml prints it as is.
type Status struct {
	Pools        []Pool        `json:"pools"`
	LayeredPools []LayeredPool `json:"layeredPools"`
	Nodes        []Node        `json:"nodes"`
}

// Pool is a MachineConfigPool's row: the pool CRD's printer columns.
type Pool struct {
	Name                 string      `json:"name"`
	Config               string      `json:"config"`
	Updated              string      `json:"updated"`
	Updating             string      `json:"updating"`
	Degraded             string      `json:"degraded"`
	MachineCount         int32       `json:"machineCount"`
	ReadyMachineCount    int32       `json:"readyMachineCount"`
	UpdatedMachineCount  int32       `json:"updatedMachineCount"`
	DegradedMachineCount int32       `json:"degradedMachineCount"`
	Created              metav1.Time `json:"created"`
}

// LayeredPool is a MachineOSConfig's row: its pool, current build and the image the pool uses.
type LayeredPool struct {
	MachineOSConfig string `json:"machineOSConfig"`
	Pool            string `json:"pool"`
	// Build is the current MachineOSBuild (the current-machine-os-build annotation, else status.machineOSBuild).
	Build string `json:"build,omitempty"`
	// BuildState is the build's state (Pending, Prepared, Building, Succeeded, Failed, Interrupted), NotFound
	// when the build does not exist.
	BuildState string `json:"buildState,omitempty"`
	// Image is status.currentImagePullSpec.
	Image string `json:"image,omitempty"`
}

// Node is a node's row: the pools it is in and the node annotations of the daemon.
type Node struct {
	Name          string   `json:"name"`
	Pools         []string `json:"pools"`
	CurrentConfig string   `json:"currentConfig,omitempty"`
	DesiredConfig string   `json:"desiredConfig,omitempty"`
	CurrentImage  string   `json:"currentImage,omitempty"`
	DesiredImage  string   `json:"desiredImage,omitempty"`
	State         string   `json:"state,omitempty"`
	Reason        string   `json:"reason,omitempty"`
}

// BuildNotFound is the BuildState of a current build that does not exist.
const BuildNotFound = "NotFound"

// Objects are what status reads.
type Objects struct {
	Pools []mcfgv1.MachineConfigPool
	MOSCs []mcfgv1.MachineOSConfig
	MOSBs []mcfgv1.MachineOSBuild
	Nodes []corev1.Node
}

// Load lists the objects status reads. A cluster that does not serve MachineOSConfigs or MachineOSBuilds
// has no layered pools.
func Load(ctx context.Context, c client.Reader) (*Objects, error) {
	var (
		pools mcfgv1.MachineConfigPoolList
		moscs mcfgv1.MachineOSConfigList
		mosbs mcfgv1.MachineOSBuildList
		nodes corev1.NodeList
	)
	for _, l := range []struct {
		kind     string
		list     client.ObjectList
		optional bool
	}{
		{"MachineConfigPools", &pools, false},
		{"MachineOSConfigs", &moscs, true},
		{"MachineOSBuilds", &mosbs, true},
		{"Nodes", &nodes, false},
	} {
		if err := c.List(ctx, l.list); err != nil {
			if l.optional && meta.IsNoMatchError(err) {
				continue
			}
			return nil, fmt.Errorf("listing %s: %w", l.kind, err)
		}
	}
	return &Objects{Pools: pools.Items, MOSCs: moscs.Items, MOSBs: mosbs.Items, Nodes: nodes.Items}, nil
}

// Summarize computes what status shows, sorted by name.
func Summarize(o *Objects) *Status {
	st := &Status{Pools: []Pool{}, LayeredPools: []LayeredPool{}, Nodes: []Node{}}
	for _, p := range o.Pools {
		st.Pools = append(st.Pools, Pool{
			Name:                 p.Name,
			Config:               p.Status.Configuration.Name,
			Updated:              poolCondition(p, mcfgv1.MachineConfigPoolUpdated),
			Updating:             poolCondition(p, mcfgv1.MachineConfigPoolUpdating),
			Degraded:             poolCondition(p, mcfgv1.MachineConfigPoolDegraded),
			MachineCount:         p.Status.MachineCount,
			ReadyMachineCount:    p.Status.ReadyMachineCount,
			UpdatedMachineCount:  p.Status.UpdatedMachineCount,
			DegradedMachineCount: p.Status.DegradedMachineCount,
			Created:              p.CreationTimestamp,
		})
	}
	sort.Slice(st.Pools, func(i, j int) bool { return st.Pools[i].Name < st.Pools[j].Name })

	builds := map[string]*mcfgv1.MachineOSBuild{}
	for i := range o.MOSBs {
		builds[o.MOSBs[i].Name] = &o.MOSBs[i]
	}
	for _, m := range o.MOSCs {
		lp := LayeredPool{MachineOSConfig: m.Name, Pool: m.Spec.MachineConfigPool.Name, Image: string(m.Status.CurrentImagePullSpec)}
		lp.Build = osbuild.CurrentName(&m)
		if lp.Build == "" && m.Status.MachineOSBuild != nil {
			lp.Build = m.Status.MachineOSBuild.Name
		}
		if lp.Build != "" {
			lp.BuildState = BuildNotFound
			if b := builds[lp.Build]; b != nil {
				lp.BuildState = printers.BuildState(b)
			}
		}
		st.LayeredPools = append(st.LayeredPools, lp)
	}
	sort.Slice(st.LayeredPools, func(i, j int) bool { return st.LayeredPools[i].MachineOSConfig < st.LayeredPools[j].MachineOSConfig })

	for _, n := range o.Nodes {
		a := n.Annotations
		st.Nodes = append(st.Nodes, Node{
			Name: n.Name, Pools: poolsOf(&n, o.Pools),
			CurrentConfig: a[wellknown.CurrentConfigAnnotation], DesiredConfig: a[wellknown.DesiredConfigAnnotation],
			CurrentImage: a[wellknown.CurrentImageAnnotation], DesiredImage: a[wellknown.DesiredImageAnnotation],
			State: a[wellknown.StateAnnotation], Reason: a[wellknown.ReasonAnnotation],
		})
	}
	sort.Slice(st.Nodes, func(i, j int) bool { return st.Nodes[i].Name < st.Nodes[j].Name })
	return st
}

func poolCondition(p mcfgv1.MachineConfigPool, t mcfgv1.MachineConfigPoolConditionType) string {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return string(c.Status)
		}
	}
	return ""
}

// poolsOf returns the names of the pools whose node selector selects the node, sorted. (The rollout puts
// a node that is in worker and in a custom pool into the custom pool only; both are shown.)
func poolsOf(n *corev1.Node, pools []mcfgv1.MachineConfigPool) []string {
	names := []string{}
	for _, p := range pools {
		if p.Spec.NodeSelector == nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.NodeSelector)
		if err != nil || sel.Empty() {
			continue
		}
		if sel.Matches(labels.Set(n.Labels)) {
			names = append(names, p.Name)
		}
	}
	sort.Strings(names)
	return names
}
