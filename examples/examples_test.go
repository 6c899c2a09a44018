package examples

import (
	"bytes"
	"context"
	"strings"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/imagemode/imagemode/internal/controlplane"
)

// TestDocsMachineOSConfigAppliesUnchanged applies the docs' MachineOSConfig with kubectl, byte for byte, and
// reads it back typed: every field the docs set is stored.
func TestDocsMachineOSConfigAppliesUnchanged(t *testing.T) {
	t.Parallel() // its own control plane
	cp := controlplane.Start(t, controlplane.Options{})
	raw, err := Doc(MachineOSConfigLayeredImage)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cp.Kubectl(context.Background(), raw, "apply", "-f", "-")
	if err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	if !strings.Contains(out, "machineosconfig.machineconfiguration.openshift.io/layered-image created") {
		t.Errorf("unexpected kubectl output: %s", out)
	}
	got := &mcfgv1.MachineOSConfig{}
	if err := cp.Client.Get(context.Background(), client.ObjectKey{Name: "layered-image"}, got); err != nil {
		t.Fatal(err)
	}
	s := got.Spec
	checks := []struct{ field, got, want string }{
		{"spec.machineConfigPool.name", s.MachineConfigPool.Name, "layered-image"},
		{"spec.imageBuilder.imageBuilderType", string(s.ImageBuilder.ImageBuilderType), "Job"},
		{"spec.baseImagePullSecret.name", s.BaseImagePullSecret.Name, "global-pull-secret-copy"},
		{"spec.renderedImagePushSecret.name", s.RenderedImagePushSecret.Name, "builder-dockercfg-mtcl23"},
		{"spec.renderedImagePushSpec", string(s.RenderedImagePushSpec), "image-registry.openshift-image-registry.svc:5000/openshift/os-image:latest"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if len(s.Containerfile) != 1 || s.Containerfile[0].ContainerfileArch != mcfgv1.NoArch ||
		!strings.HasPrefix(s.Containerfile[0].Content, "FROM configs AS final\nRUN dnf install -y cowsay") {
		t.Errorf("containerFile not stored as written: %+v", s.Containerfile)
	}
	// Applying the same file again changes nothing.
	if out, err := cp.Kubectl(context.Background(), raw, "apply", "-f", "-"); err != nil || !strings.Contains(out, "unchanged") {
		t.Errorf("second apply: %v: %s", err, out)
	}
}

// TestInvalidPushSpecRejected checks that the CRD's validation refuses push specs that are not
// host[:port][/namespace]/name:tag, with the API's message naming the field.
func TestInvalidPushSpecRejected(t *testing.T) {
	t.Parallel() // its own control plane
	cp := controlplane.Start(t, controlplane.Options{})
	raw, err := Doc(MachineOSConfigLayeredImage)
	if err != nil {
		t.Fatal(err)
	}
	const valid = "image-registry.openshift-image-registry.svc:5000/openshift/os-image:latest"
	tests := []struct{ name, spec string }{
		{name: "no tag", spec: "quay.io/example/os-image"},
		{name: "digest instead of tag", spec: "quay.io/example/os-image@sha256:3c8fc667adcb432ce0c83581f16086afec08a961dd28fed69bb6bad6db0a0754"},
		{name: "host without a dot", spec: "localhost:5000/os-image:latest"},
		{name: "scheme", spec: "https://quay.io/example/os-image:latest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bad := bytes.Replace(raw, []byte(valid), []byte(tc.spec), 1)
			var obj mcfgv1.MachineOSConfig
			if err := yaml.Unmarshal(bad, &obj); err != nil {
				t.Fatal(err)
			}
			obj.Name = "bad-" + strings.ReplaceAll(tc.name, " ", "-")
			err := cp.Client.Create(context.Background(), &obj)
			if err == nil {
				t.Fatalf("push spec %q accepted", tc.spec)
			}
			for _, want := range []string{"spec.renderedImagePushSpec", "the OCI Image name should follow the host[:port][/namespace]/name format"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}
