package machineos

import (
	"strings"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/imagemode/imagemode/internal/wellknown"
)

func fixture() (*mcfgv1.MachineOSConfig, *mcfgv1.MachineConfigPool, *mcfgv1.MachineConfig) {
	mosc := &mcfgv1.MachineOSConfig{ObjectMeta: metav1.ObjectMeta{Name: "layered-image"}, Spec: mcfgv1.MachineOSConfigSpec{
		MachineConfigPool:       mcfgv1.MachineConfigPoolReference{Name: "layered-image"},
		ImageBuilder:            mcfgv1.MachineOSImageBuilder{ImageBuilderType: mcfgv1.JobBuilder},
		RenderedImagePushSecret: mcfgv1.ImageSecretObjectReference{Name: "push"},
		RenderedImagePushSpec:   "registry.example.com/os/image:latest",
		Containerfile:           []mcfgv1.MachineOSContainerfile{{ContainerfileArch: mcfgv1.NoArch, Content: "FROM configs AS final\nRUN true"}},
	}}
	pool := &mcfgv1.MachineConfigPool{ObjectMeta: metav1.ObjectMeta{Name: "layered-image"}, Spec: mcfgv1.MachineConfigPoolSpec{
		Configuration: mcfgv1.MachineConfigPoolStatusConfiguration{
			ObjectReference: corev1.ObjectReference{Name: "rendered-layered-image-aaa"},
			Source:          []corev1.ObjectReference{{Kind: "MachineConfig", Name: "00-worker"}},
		},
	}}
	rendered := &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: "rendered-layered-image-aaa",
		Annotations: map[string]string{wellknown.ReleaseImageVersionAnnotation: "4.19.0"}},
		Spec: mcfgv1.MachineConfigSpec{OSImageURL: "registry.example.com/rhcos@sha256:1"}}
	return mosc, pool, rendered
}

func TestBuildName(t *testing.T) {
	name := func(mutate func(*mcfgv1.MachineOSConfig, *mcfgv1.MachineConfigPool, *mcfgv1.MachineConfig)) string {
		mosc, pool, rendered := fixture()
		mutate(mosc, pool, rendered)
		n, err := BuildName(mosc, pool, rendered, "")
		require.NoError(t, err)
		return n
	}
	same := func(*mcfgv1.MachineOSConfig, *mcfgv1.MachineConfigPool, *mcfgv1.MachineConfig) {}
	base := name(same)
	assert.Regexp(t, `^layered-image-[0-9a-f]{32}$`, base)
	assert.Equal(t, base, name(same), "stable")

	tests := []struct {
		name   string
		mutate func(*mcfgv1.MachineOSConfig, *mcfgv1.MachineConfigPool, *mcfgv1.MachineConfig)
		same   bool
	}{
		{"paused pool keeps the name", func(_ *mcfgv1.MachineOSConfig, p *mcfgv1.MachineConfigPool, _ *mcfgv1.MachineConfig) {
			p.Spec.Paused = true
		}, true},
		{"status and labels do not count", func(m *mcfgv1.MachineOSConfig, p *mcfgv1.MachineConfigPool, _ *mcfgv1.MachineConfig) {
			m.Status.CurrentImagePullSpec = "x@sha256:2"
			m.Labels = map[string]string{"a": "b"}
			p.Status.Configuration.Name = "rendered-old"
		}, true},
		{"containerfile change", func(m *mcfgv1.MachineOSConfig, _ *mcfgv1.MachineConfigPool, _ *mcfgv1.MachineConfig) {
			m.Spec.Containerfile[0].Content += "\nRUN echo"
		}, false},
		{"push secret name change", func(m *mcfgv1.MachineOSConfig, _ *mcfgv1.MachineConfigPool, _ *mcfgv1.MachineConfig) {
			m.Spec.RenderedImagePushSecret.Name = "other"
		}, false},
		{"rendered config change", func(_ *mcfgv1.MachineOSConfig, p *mcfgv1.MachineConfigPool, r *mcfgv1.MachineConfig) {
			p.Spec.Configuration.Name, r.Name = "rendered-layered-image-bbb", "rendered-layered-image-bbb"
		}, false},
		{"source list change", func(_ *mcfgv1.MachineOSConfig, p *mcfgv1.MachineConfigPool, _ *mcfgv1.MachineConfig) {
			p.Spec.Configuration.Source = append(p.Spec.Configuration.Source, corev1.ObjectReference{Name: "99-x"})
		}, false},
		{"base image change", func(_ *mcfgv1.MachineOSConfig, _ *mcfgv1.MachineConfigPool, r *mcfgv1.MachineConfig) {
			r.Spec.OSImageURL = "registry.example.com/rhcos@sha256:2"
		}, false},
		{"release version change", func(_ *mcfgv1.MachineOSConfig, _ *mcfgv1.MachineConfigPool, r *mcfgv1.MachineConfig) {
			r.Annotations[wellknown.ReleaseImageVersionAnnotation] = "4.19.1"
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := name(tc.mutate)
			if tc.same {
				assert.Equal(t, base, got)
			} else {
				assert.NotEqual(t, base, got)
			}
		})
	}
}

// TestBuildNameVector pins the fixture's build name to the reference's value: MD5 of the salt and the YAML
// of the three objects below, in order, computed with Python's hashlib independently of this code.
//
//	name: rendered-layered-image-aaa
//	source:
//	- kind: MachineConfig
//	  name: 00-worker
//	containerFile:
//	- containerfileArch: NoArch
//	  content: |-
//	    FROM configs AS final
//	    RUN true
//	imageBuilder:
//	  imageBuilderType: Job
//	machineConfigPool:
//	  name: layered-image
//	renderedImagePushSecret:
//	  name: push
//	renderedImagePushSpec: registry.example.com/os/image:latest
//	BaseOSContainerImage: registry.example.com/rhcos@sha256:1
//	BaseOSExtensionsContainerImage: ""
//	OSImageURL: ""
//	ReleaseVersion: 4.19.0
func TestBuildNameVector(t *testing.T) {
	t.Parallel()
	const want = "layered-image-6621974dbf69a690d1446f8e31fdc547"
	mosc, pool, rendered := fixture()
	got, err := BuildName(mosc, pool, rendered, "")
	require.NoError(t, err)
	assert.Equal(t, want, got)

	// A digest-pinned base: the resolved digest adds nothing, the name stays the reference's.
	rendered.Spec.OSImageURL = "registry.example.com/rhcos@sha256:" + strings.Repeat("1", 64)
	pinned, err := BuildName(mosc, pool, rendered, "")
	require.NoError(t, err)
	resolved, err := BuildName(mosc, pool, rendered, rendered.Spec.OSImageURL)
	require.NoError(t, err)
	assert.Equal(t, pinned, resolved)

	// A tag: its resolved digest is hashed too, so a moved tag gives a new name and moving back the old one.
	rendered.Spec.OSImageURL = "registry.example.com/rhcos:4.19"
	tagA, err := BuildName(mosc, pool, rendered, "registry.example.com/rhcos@sha256:"+strings.Repeat("a", 64))
	require.NoError(t, err)
	tagB, err := BuildName(mosc, pool, rendered, "registry.example.com/rhcos@sha256:"+strings.Repeat("b", 64))
	require.NoError(t, err)
	tagA2, err := BuildName(mosc, pool, rendered, "registry.example.com/rhcos@sha256:"+strings.Repeat("a", 64))
	require.NoError(t, err)
	assert.NotEqual(t, tagA, tagB)
	assert.Equal(t, tagA, tagA2)
	_, err = BuildName(mosc, pool, rendered, "registry.example.com/rhcos:4.19")
	require.ErrorContains(t, err, "is not pinned by digest")
}

func TestBuildNameRefusesMismatches(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*mcfgv1.MachineOSConfig, *mcfgv1.MachineConfigPool, *mcfgv1.MachineConfig)
		wantErr string
	}{
		{"other pool", func(m *mcfgv1.MachineOSConfig, _ *mcfgv1.MachineConfigPool, _ *mcfgv1.MachineConfig) {
			m.Spec.MachineConfigPool.Name = "worker"
		}, `is for pool "worker"`},
		{"pool not rendered", func(_ *mcfgv1.MachineOSConfig, p *mcfgv1.MachineConfigPool, _ *mcfgv1.MachineConfig) {
			p.Spec.Configuration.Name = ""
		}, "has no rendered config yet"},
		{"stale rendered config", func(_ *mcfgv1.MachineOSConfig, _ *mcfgv1.MachineConfigPool, r *mcfgv1.MachineConfig) {
			r.Name = "rendered-layered-image-old"
		}, "is not pool"},
		{"not a rendered config", func(_ *mcfgv1.MachineOSConfig, p *mcfgv1.MachineConfigPool, r *mcfgv1.MachineConfig) {
			p.Spec.Configuration.Name, r.Name = "99-user", "99-user"
		}, "is not a rendered config"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mosc, pool, rendered := fixture()
			tc.mutate(mosc, pool, rendered)
			_, err := BuildName(mosc, pool, rendered, "")
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestPullSpecs(t *testing.T) {
	tests := []struct {
		name, in, suffix, want, wantErr string
		digest                          bool
	}{
		{name: "tag replaced", in: "image-registry.openshift-image-registry.svc:5000/openshift/os-image:latest", suffix: "layered-image-abc",
			want: "image-registry.openshift-image-registry.svc:5000/openshift/os-image:layered-image-abc"},
		{name: "local registry", in: "127.0.0.1:5443/os/image:v1", suffix: "x-1", want: "127.0.0.1:5443/os/image:x-1"},
		{name: "digested", in: "127.0.0.1:5443/os/image:x-1", suffix: "sha256:3c8fc667adcb432ce0c83581f16086afec08a961dd28fed69bb6bad6db0a0754", digest: true,
			want: "127.0.0.1:5443/os/image@sha256:3c8fc667adcb432ce0c83581f16086afec08a961dd28fed69bb6bad6db0a0754"},
		{name: "invalid", in: "Not A Ref", suffix: "x", wantErr: "parsing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			var err error
			if tc.digest {
				got, err = DigestedPullSpec(tc.in, tc.suffix)
			} else {
				got, err = BuildPushSpec(tc.in, tc.suffix)
			}
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}
