package registry

import (
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos/osbuild"
)

const (
	dgA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	dgB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func node(name, current, desired string) *corev1.Node {
	ann := map[string]string{}
	if current != "" {
		ann[wellknown.CurrentImageAnnotation] = current
	}
	if desired != "" {
		ann[wellknown.DesiredImageAnnotation] = desired
	}
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: ann}}
}

func mosc(name, current string) *mcfgv1.MachineOSConfig {
	c := &mcfgv1.MachineOSConfig{ObjectMeta: metav1.ObjectMeta{Name: name}}
	c.Status.CurrentImagePullSpec = mcfgv1.ImageDigestFormat(current)
	return c
}

func mosbImage(name, digested string) *mcfgv1.MachineOSBuild {
	b := &mcfgv1.MachineOSBuild{ObjectMeta: metav1.ObjectMeta{Name: name}}
	b.Status.DigestedImagePushSpec = mcfgv1.ImageDigestFormat(digested)
	return b
}

func withState(b *mcfgv1.MachineOSBuild, s osbuild.State) *mcfgv1.MachineOSBuild {
	b.Status.Conditions = osbuild.Conditions(s, nil, metav1.Now())
	return b
}

func deleting(b *mcfgv1.MachineOSBuild) *mcfgv1.MachineOSBuild {
	now := metav1.Now()
	b.DeletionTimestamp = &now
	return b
}

func mc(name, osImageURL string) *mcfgv1.MachineConfig {
	m := &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: name}}
	m.Spec.OSImageURL = osImageURL
	return m
}

func TestInUse(t *testing.T) {
	t.Parallel()
	const repo = "registry.example.com:5000/os/layered"
	tests := []struct {
		name  string
		image string
		inv   Inventory
		want  []Reason
	}{
		{
			name:  "nothing references the image",
			image: repo + "@" + dgA,
			inv: Inventory{
				Nodes:            []*corev1.Node{node("n1", repo+"@"+dgB, repo+"@"+dgB)},
				MachineOSConfigs: []*mcfgv1.MachineOSConfig{mosc("worker", repo+"@"+dgB)},
				MachineConfigs:   []*mcfgv1.MachineConfig{mc("rendered-worker-1", "quay.io/base/os@"+dgA)},
			},
		},
		{
			name:  "nodes of every pool, current and desired",
			image: repo + "@" + dgA,
			inv: Inventory{Nodes: []*corev1.Node{
				node("worker-0", repo+"@"+dgA, repo+"@"+dgB),
				node("infra-0", repo+"@"+dgB, repo+"@"+dgA),
				node("master-0", "", ""),
			}},
			want: []Reason{
				{Kind: "Node", Name: "worker-0", Field: "metadata.annotations[" + wellknown.CurrentImageAnnotation + "]"},
				{Kind: "Node", Name: "infra-0", Field: "metadata.annotations[" + wellknown.DesiredImageAnnotation + "]"},
			},
		},
		{
			name:  "the same digest in another repository is another image",
			image: repo + "@" + dgA,
			inv:   Inventory{Nodes: []*corev1.Node{node("n1", "registry.example.com:5000/os/other@"+dgA, "")}},
		},
		{
			name:  "host names compare case-insensitively; tag plus digest compares by digest",
			image: repo + "@" + dgA,
			inv: Inventory{MachineOSConfigs: []*mcfgv1.MachineOSConfig{
				mosc("worker", "Registry.Example.com:5000/os/layered:worker-123@"+dgA),
			}},
			want: []Reason{{Kind: "MachineOSConfig", Name: "worker", Field: "status.currentImagePullSpec"}},
		},
		{
			name:  "docker.io short names are normalized",
			image: "docker.io/library/fedora@" + dgA,
			inv:   Inventory{MachineConfigs: []*mcfgv1.MachineConfig{mc("99-override", "fedora@"+dgA)}},
			want:  []Reason{{Kind: "MachineConfig", Name: "99-override", Field: "spec.osImageURL"}},
		},
		{
			name:  "other builds count, the build being deleted does not",
			image: repo + "@" + dgA,
			inv: Inventory{
				MachineOSBuilds: []*mcfgv1.MachineOSBuild{
					mosbImage("worker-old", repo+"@"+dgA),
					mosbImage("infra-same-image", repo+"@"+dgA),
					mosbImage("worker-new", repo+"@"+dgB),
				},
				ExcludeBuild: "worker-old",
			},
			want: []Reason{{Kind: "MachineOSBuild", Name: "infra-same-image", Field: "status.digestedImagePushSpec"}},
		},
		{
			name:  "the image's build running again under its name may be pushing it",
			image: repo + "@" + dgA,
			inv: Inventory{
				MachineOSBuilds: []*mcfgv1.MachineOSBuild{withState(mosbImage("worker-abc", ""), osbuild.StateBuilding), withState(mosbImage("worker-def", ""), osbuild.StateBuilding)},
				ImageBuild:      "worker-abc",
			},
			want: []Reason{{Kind: "MachineOSBuild", Name: "worker-abc", Field: "spec.renderedImagePushSpec (building it again)"}},
		},
		{
			name:  "the image's build, finished again, protects it only by its digest",
			image: repo + "@" + dgA,
			inv: Inventory{
				MachineOSBuilds: []*mcfgv1.MachineOSBuild{withState(mosbImage("worker-abc", ""), osbuild.StateFailed)},
				ImageBuild:      "worker-abc",
			},
		},
		{
			name:  "the image's build on its way out does not protect it",
			image: repo + "@" + dgA,
			inv: Inventory{
				MachineOSBuilds: []*mcfgv1.MachineOSBuild{deleting(withState(mosbImage("worker-abc", ""), osbuild.StatePrepared))},
				ImageBuild:      "worker-abc", ExcludeBuild: "worker-abc",
			},
		},
		{
			name:  "a tag in a MachineConfig matches only the image's own tag",
			image: repo + ":worker-123@" + dgA,
			inv: Inventory{MachineConfigs: []*mcfgv1.MachineConfig{
				mc("99-same-tag", repo+":worker-123"),
				mc("99-other-tag", repo+":worker-456"),
			}},
			want: []Reason{{Kind: "MachineConfig", Name: "99-same-tag", Field: "spec.osImageURL"}},
		},
		{
			name:  "a tag does not match an image known only by digest",
			image: repo + "@" + dgA,
			inv:   Inventory{MachineConfigs: []*mcfgv1.MachineConfig{mc("99-tag", repo+":worker-123")}},
		},
		{
			name:  "a bare repository means latest",
			image: repo + ":latest@" + dgA,
			inv:   Inventory{MachineConfigs: []*mcfgv1.MachineConfig{mc("99-bare", repo)}},
			want:  []Reason{{Kind: "MachineConfig", Name: "99-bare", Field: "spec.osImageURL"}},
		},
		{
			name:  "an unparsable candidate never matches a valid image",
			image: repo + "@" + dgA,
			inv:   Inventory{Nodes: []*corev1.Node{node("n1", "not a reference", "")}},
		},
		{
			name:  "an unparsable image is protected by textual equality",
			image: "Bad Ref",
			inv:   Inventory{Nodes: []*corev1.Node{node("n1", "Bad Ref", "")}},
			want:  []Reason{{Kind: "Node", Name: "n1", Field: "metadata.annotations[" + wellknown.CurrentImageAnnotation + "]"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, InUse(tc.image, tc.inv))
		})
	}
}

func TestReasonString(t *testing.T) {
	t.Parallel()
	r := Reason{Kind: "Node", Name: "worker-0", Field: "metadata.annotations[x]"}
	assert.Equal(t, "Node/worker-0 metadata.annotations[x]", r.String())
}
