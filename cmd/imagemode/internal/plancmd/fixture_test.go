package plancmd

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagemode/imagemode/internal/golden"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	operatorv1alpha1 "github.com/openshift/api/operator/v1alpha1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/imagemode/imagemode/internal/scheme"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos"
	"github.com/imagemode/imagemode/render/containerruntime"
	"github.com/imagemode/imagemode/render/registries"
	"github.com/imagemode/imagemode/render/renderer"
)

// clusterDir is the snapshot the offline tests plan against; fixtureObjects writes it with -update.
const clusterDir = "testdata/cluster"

const (
	fixtureVersion = "fixture"
	baseOSImage    = "quay.example.com/openshift/rhcos@sha256:" + "1111111111111111111111111111111111111111111111111111111111111111"
	layeredImage   = "quay.example.com/os/layered@sha256:" + "2222222222222222222222222222222222222222222222222222222222222222"
)

func fixturePool(name string, roles ...string) *mcfgv1.MachineConfigPool {
	p := &mcfgv1.MachineConfigPool{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if len(roles) == 1 {
		p.Spec.MachineConfigSelector = &metav1.LabelSelector{MatchLabels: map[string]string{wellknown.RoleLabel: roles[0]}}
	} else {
		p.Spec.MachineConfigSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: wellknown.RoleLabel, Operator: metav1.LabelSelectorOpIn, Values: roles}}}
	}
	p.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"node-role.kubernetes.io/" + name: ""}}
	return p
}

func baseConfig(name, role string) *mcfgv1.MachineConfig {
	ign := fmt.Sprintf(`{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/imagemode/role","mode":420,"contents":{"source":"data:,%s%%0A"}}]}}`, role)
	return &mcfgv1.MachineConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{wellknown.RoleLabel: role}},
		Spec:       mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: []byte(ign)}},
	}
}

func fixtureNode(name string, roles []string, annotations map[string]string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}, Annotations: annotations}}
	for _, r := range roles {
		n.Labels["node-role.kubernetes.io/"+r] = ""
	}
	return n
}

// fixtureObjects is the cluster the offline tests plan against, settled as the controllers leave it: pools
// master and worker (built-in) and layered-image (configs of roles worker and layered-image) with its
// MachineOSConfig and the successful build of its rendered config; an ImageContentSourcePolicy with two
// mirrors (so 99-master/99-worker-generated-registries exist); the rendered configs; nodes at them, and
// worker-2, a node that just joined (no current config).
func fixtureObjects(t *testing.T) []client.Object {
	t.Helper()
	cc := renderer.NewControllerConfig(baseOSImage, "", "4.19.0-fixture")
	icsp := &operatorv1alpha1.ImageContentSourcePolicy{ObjectMeta: metav1.ObjectMeta{Name: "mirror-registry"}}
	icsp.Spec.RepositoryDigestMirrors = []operatorv1alpha1.RepositoryDigestMirrors{
		{Source: "registry.example.com/team", Mirrors: []string{"mirror-a.example.net/team", "mirror-b.example.net/team"}}}
	pools := []*mcfgv1.MachineConfigPool{fixturePool("master", "master"), fixturePool("worker", "worker"),
		fixturePool("layered-image", "worker", "layered-image")}
	for _, p := range pools[:2] {
		p.Labels = map[string]string{wellknown.BuiltInPoolLabel: ""}
	}
	configs := []*mcfgv1.MachineConfig{baseConfig("00-master", "master"), baseConfig("00-worker", "worker")}
	for _, p := range pools[:2] {
		gen, err := containerruntime.Desired(p.Name, registries.Inputs{ICSPs: []operatorv1alpha1.ImageContentSourcePolicy{*icsp}}, fixtureVersion)
		require.NoError(t, err)
		require.NotNil(t, gen)
		configs = append(configs, gen)
	}
	rendered := map[string]*mcfgv1.MachineConfig{}
	for _, p := range pools {
		out := renderer.Render(renderer.Inputs{Pool: p, Configs: configs, ControllerConfig: cc, Version: fixtureVersion})
		require.Nil(t, out.Failure)
		p.Spec.Configuration = mcfgv1.MachineConfigPoolStatusConfiguration{ObjectReference: corev1.ObjectReference{Name: out.Rendered.Name}, Source: out.Sources}
		p.Status.Configuration = p.Spec.Configuration
		rendered[p.Name] = out.Rendered
	}
	for _, p := range pools {
		configs = append(configs, rendered[p.Name])
	}

	mosc := &mcfgv1.MachineOSConfig{ObjectMeta: metav1.ObjectMeta{Name: "layered-image", UID: types.UID("0b5e6d1e-0000-4000-8000-000000000001")}}
	mosc.Spec.MachineConfigPool.Name = "layered-image"
	mosc.Spec.Containerfile = []mcfgv1.MachineOSContainerfile{{ContainerfileArch: mcfgv1.NoArch,
		Content: "FROM configs AS final\nRUN dnf install -y cowsay && \\\n  dnf clean all && \\\n  ostree container commit"}}
	mosc.Spec.ImageBuilder.ImageBuilderType = mcfgv1.JobBuilder
	mosc.Spec.BaseImagePullSecret = &mcfgv1.ImageSecretObjectReference{Name: "global-pull-secret-copy"}
	mosc.Spec.RenderedImagePushSpec = "quay.example.com/os/layered:latest"
	mosc.Spec.RenderedImagePushSecret.Name = "builder-dockercfg-mtcl23"
	buildName, err := machineos.BuildName(mosc, pools[2], rendered["layered-image"], "")
	require.NoError(t, err)
	mosc.Annotations = map[string]string{wellknown.CurrentMachineOSBuildAnnotation: buildName}
	mosc.Status.CurrentImagePullSpec = mcfgv1.ImageDigestFormat(layeredImage)
	mosc.Status.MachineOSBuild = &mcfgv1.ObjectReference{Group: wellknown.Group, Resource: "machineosbuilds", Name: buildName}

	yes := true
	mosb := &mcfgv1.MachineOSBuild{ObjectMeta: metav1.ObjectMeta{Name: buildName,
		Labels:      map[string]string{wellknown.MachineOSConfigLabel: mosc.Name, wellknown.TargetMachineConfigPoolLabel: "layered-image"},
		Annotations: map[string]string{machineos.SpecHashAnnotation: machineos.SpecHash(mosc.Spec)},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: mcfgv1.GroupVersion.String(), Kind: "MachineOSConfig",
			Name: mosc.Name, UID: mosc.UID, Controller: &yes}}}}
	mosb.Spec.MachineConfig.Name = rendered["layered-image"].Name
	mosb.Spec.MachineOSConfig.Name = mosc.Name
	mosb.Spec.RenderedImagePushSpec = mcfgv1.ImageTagFormat("quay.example.com/os/layered:" + buildName)
	when := metav1.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, typ := range []string{"Prepared", "Building", "Failed", "Interrupted", "Succeeded"} {
		s := metav1.ConditionFalse
		if typ == "Succeeded" {
			s = metav1.ConditionTrue
		}
		mosb.Status.Conditions = append(mosb.Status.Conditions, metav1.Condition{Type: typ, Status: s, Reason: typ, LastTransitionTime: when})
	}
	mosb.Status.DigestedImagePushSpec = mcfgv1.ImageDigestFormat(layeredImage)

	at := func(pool string, image string) map[string]string {
		a := map[string]string{wellknown.CurrentConfigAnnotation: rendered[pool].Name, wellknown.DesiredConfigAnnotation: rendered[pool].Name,
			wellknown.StateAnnotation: wellknown.NodeStateDone}
		if image != "" {
			a[wellknown.CurrentImageAnnotation], a[wellknown.DesiredImageAnnotation] = image, image
		}
		return a
	}
	objs := []client.Object{cc, icsp, mosc, mosb,
		fixtureNode("master-0", []string{"master"}, at("master", "")),
		fixtureNode("worker-0", []string{"worker"}, at("worker", "")),
		fixtureNode("worker-1", []string{"worker"}, at("worker", "")),
		fixtureNode("worker-2", []string{"worker"}, nil),
		fixtureNode("layered-0", []string{"worker", "layered-image"}, at("layered-image", layeredImage)),
	}
	for _, p := range pools {
		objs = append(objs, p)
	}
	for _, mc := range configs {
		objs = append(objs, mc)
	}
	return objs
}

// fixtureFiles are fixtureObjects as the files of clusterDir: one YAML file per object.
func fixtureFiles(t *testing.T) map[string][]byte {
	t.Helper()
	scheme := scheme.New()
	files := map[string][]byte{}
	for _, o := range fixtureObjects(t) {
		gvks, _, err := scheme.ObjectKinds(o)
		require.NoError(t, err)
		o.GetObjectKind().SetGroupVersionKind(gvks[0])
		raw, err := yaml.Marshal(o)
		require.NoError(t, err)
		name := strings.ToLower(gvks[0].Kind) + "-" + o.GetName() + ".yaml"
		files[name] = raw
	}
	return files
}

// TestClusterSnapshotUpToDate keeps testdata/cluster equal to fixtureObjects (rewritten with -update).
func TestClusterSnapshotUpToDate(t *testing.T) {
	want := fixtureFiles(t)
	if *golden.Update {
		require.NoError(t, os.RemoveAll(clusterDir))
		require.NoError(t, os.MkdirAll(clusterDir, 0o755))
		for name, raw := range want {
			require.NoError(t, os.WriteFile(filepath.Join(clusterDir, name), raw, 0o644))
		}
	}
	entries, err := os.ReadDir(clusterDir)
	require.NoError(t, err, "run with -update to create %s", clusterDir)
	got := map[string][]byte{}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(clusterDir, e.Name()))
		require.NoError(t, err)
		got[e.Name()] = raw
	}
	for name := range want {
		assert.Equal(t, string(want[name]), string(got[name]), "%s differs from fixtureObjects: run with -update", name)
	}
	assert.Len(t, got, len(want))
}
