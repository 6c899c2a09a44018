package plancmd

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	configv1 "github.com/openshift/api/config/v1"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	operatorv1 "github.com/openshift/api/operator/v1"
	operatorv1alpha1 "github.com/openshift/api/operator/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/render/containerruntime"
	"github.com/imagemode/imagemode/render/disruption"
)

// State is a snapshot of what a plan depends on. Compute never changes it.
type State struct {
	Pools   []*mcfgv1.MachineConfigPool
	Configs []*mcfgv1.MachineConfig
	Nodes   []*corev1.Node
	MOSCs   []*mcfgv1.MachineOSConfig
	MOSBs   []*mcfgv1.MachineOSBuild
	// ControllerConfig is machine-config-controller, nil when missing (no pool renders then).
	ControllerConfig *mcfgv1.ControllerConfig
	// MachineConfiguration is MachineConfiguration/cluster, nil when missing (the default policies apply).
	MachineConfiguration *operatorv1.MachineConfiguration
	ICSPs                []*operatorv1alpha1.ImageContentSourcePolicy
	IDMSs                []*configv1.ImageDigestMirrorSet
	ITMSs                []*configv1.ImageTagMirrorSet
	// Image is images.config.openshift.io/cluster, nil when missing.
	Image *configv1.Image
}

// LoadLive reads the snapshot from the cluster, read-only. Kinds the cluster does not serve (no
// MachineOSConfigs, no mirror sets, no MachineConfiguration) count as none.
func LoadLive(ctx context.Context, c client.Reader) (*State, error) {
	s := &State{}
	var (
		pools mcfgv1.MachineConfigPoolList
		mcs   mcfgv1.MachineConfigList
		nodes corev1.NodeList
		moscs mcfgv1.MachineOSConfigList
		mosbs mcfgv1.MachineOSBuildList
		icsps operatorv1alpha1.ImageContentSourcePolicyList
		idmss configv1.ImageDigestMirrorSetList
		itmss configv1.ImageTagMirrorSetList
	)
	for _, l := range []struct {
		kind     string
		list     client.ObjectList
		optional bool
	}{
		{"MachineConfigPools", &pools, false}, {"MachineConfigs", &mcs, false}, {"Nodes", &nodes, false},
		{"MachineOSConfigs", &moscs, true}, {"MachineOSBuilds", &mosbs, true},
		{"ImageContentSourcePolicies", &icsps, true}, {"ImageDigestMirrorSets", &idmss, true}, {"ImageTagMirrorSets", &itmss, true},
	} {
		if err := c.List(ctx, l.list); err != nil {
			if l.optional && meta.IsNoMatchError(err) {
				continue
			}
			return nil, fmt.Errorf("listing %s: %w", l.kind, err)
		}
	}
	s.Pools, s.Configs, s.Nodes = ptrs(pools.Items), ptrs(mcs.Items), ptrs(nodes.Items)
	s.MOSCs, s.MOSBs = ptrs(moscs.Items), ptrs(mosbs.Items)
	s.ICSPs, s.IDMSs, s.ITMSs = ptrs(icsps.Items), ptrs(idmss.Items), ptrs(itmss.Items)

	cc, mcfg, img := &mcfgv1.ControllerConfig{}, &operatorv1.MachineConfiguration{}, &configv1.Image{}
	for _, g := range []struct {
		what string
		name string
		obj  client.Object
		set  func()
	}{
		{"ControllerConfig", wellknown.ControllerConfigName, cc, func() { s.ControllerConfig = cc }},
		{"MachineConfiguration", disruption.ClusterName, mcfg, func() { s.MachineConfiguration = mcfg }},
		{"images.config.openshift.io", containerruntime.ImageConfigName, img, func() { s.Image = img }},
	} {
		switch err := c.Get(ctx, client.ObjectKey{Name: g.name}, g.obj); {
		case err == nil:
			g.set()
		case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
		default:
			return nil, fmt.Errorf("reading %s %s: %w", g.what, g.name, err)
		}
	}
	return s, nil
}

func ptrs[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

// LoadDir reads the snapshot from the YAML (or JSON) files of dir and its subfolders (*.yaml, *.yml,
// *.json, in name order): the kinds of a change plus Nodes, MachineOSBuilds, the ControllerConfig and
// MachineConfiguration/cluster; documents of other kinds (e.g. from a `kubectl get -o yaml` dump) are skipped.
// An object twice is an error.
func LoadDir(dir string) (*State, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
			if !d.IsDir() {
				files = append(files, p)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading offline folder: %w", err)
	}
	sort.Strings(files)
	s := &State{}
	seen := map[string]Document{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, fmt.Errorf("reading offline folder: %w", err)
		}
		docs, err := parse(f, fh, snapshotKinds, true)
		fh.Close()
		if err != nil {
			return nil, err
		}
		for _, d := range docs {
			key := d.Kind() + "/" + d.Object.GetName()
			if prev, dup := seen[key]; dup {
				return nil, docError(d, "%s is also %s", key, prev)
			}
			seen[key] = d
			if err := s.put(d); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// put adds a document's object to the snapshot, or replaces the object of the same kind and name.
func (s *State) put(d Document) error {
	switch o := d.Object.(type) {
	case *mcfgv1.MachineConfigPool:
		s.Pools = replace(s.Pools, o)
	case *mcfgv1.MachineConfig:
		s.Configs = replace(s.Configs, o)
	case *corev1.Node:
		s.Nodes = replace(s.Nodes, o)
	case *mcfgv1.MachineOSConfig:
		s.MOSCs = replace(s.MOSCs, o)
	case *mcfgv1.MachineOSBuild:
		s.MOSBs = replace(s.MOSBs, o)
	case *operatorv1alpha1.ImageContentSourcePolicy:
		s.ICSPs = replace(s.ICSPs, o)
	case *configv1.ImageDigestMirrorSet:
		s.IDMSs = replace(s.IDMSs, o)
	case *configv1.ImageTagMirrorSet:
		s.ITMSs = replace(s.ITMSs, o)
	case *mcfgv1.ControllerConfig:
		if o.Name != wellknown.ControllerConfigName {
			return docError(d, "metadata.name: the cluster's ControllerConfig is %s", wellknown.ControllerConfigName)
		}
		s.ControllerConfig = o
	case *operatorv1.MachineConfiguration:
		if o.Name != disruption.ClusterName {
			return docError(d, "metadata.name: the cluster's MachineConfiguration is %s", disruption.ClusterName)
		}
		s.MachineConfiguration = o
	case *configv1.Image:
		if o.Name != containerruntime.ImageConfigName {
			return docError(d, "metadata.name: the cluster's image config is images.config.openshift.io/%s", containerruntime.ImageConfigName)
		}
		s.Image = o
	default:
		return docError(d, "kind: unsupported")
	}
	return nil
}

// replace returns objs with o in place of the object of the same name, or appended.
func replace[T client.Object](objs []T, o T) []T {
	out := make([]T, 0, len(objs)+1)
	found := false
	for _, x := range objs {
		if x.GetName() == o.GetName() {
			out = append(out, o)
			found = true
			continue
		}
		out = append(out, x)
	}
	if !found {
		out = append(out, o)
	}
	return out
}

// without returns objs without the object named name, and whether it was there.
func without[T client.Object](objs []T, name string) ([]T, bool) {
	out := make([]T, 0, len(objs))
	found := false
	for _, x := range objs {
		if x.GetName() == name {
			found = true
			continue
		}
		out = append(out, x)
	}
	return out, found
}

// find returns the object named name, or the zero value.
func find[T client.Object](objs []T, name string) T {
	for _, x := range objs {
		if x.GetName() == name {
			return x
		}
	}
	var zero T
	return zero
}

// clone copies the snapshot's lists (not the objects), so a change can be applied to the copy.
func (s *State) clone() *State {
	c := *s
	c.Pools = append([]*mcfgv1.MachineConfigPool(nil), s.Pools...)
	c.Configs = append([]*mcfgv1.MachineConfig(nil), s.Configs...)
	c.Nodes = append([]*corev1.Node(nil), s.Nodes...)
	c.MOSCs = append([]*mcfgv1.MachineOSConfig(nil), s.MOSCs...)
	c.MOSBs = append([]*mcfgv1.MachineOSBuild(nil), s.MOSBs...)
	c.ICSPs = append([]*operatorv1alpha1.ImageContentSourcePolicy(nil), s.ICSPs...)
	c.IDMSs = append([]*configv1.ImageDigestMirrorSet(nil), s.IDMSs...)
	c.ITMSs = append([]*configv1.ImageTagMirrorSet(nil), s.ITMSs...)
	return &c
}
