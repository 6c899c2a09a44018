package localenv

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/registry"
)

// TestDemo runs the README's main command's story and checks its effects on the real parts.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test (skipped with -short)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env, err := New(Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	var out bytes.Buffer
	steps := &Steps{Out: &out}
	if err := env.Demo(ctx, steps); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if len(steps.Results) != 7 {
		t.Errorf("%d steps ran, want 7", len(steps.Results))
	}
	// Every pool rendered, from the base config of its role (layered-image inherits worker's).
	var pools mcfgv1.MachineConfigPoolList
	if err := env.ControlPlane.Client.List(ctx, &pools); err != nil {
		t.Fatal(err)
	}
	for _, p := range pools.Items {
		if !strings.HasPrefix(p.Spec.Configuration.Name, "rendered-"+p.Name+"-") || len(p.Spec.Configuration.Source) == 0 {
			t.Errorf("pool %s not rendered: %+v", p.Name, p.Spec.Configuration)
		}
	}

	mosc := &mcfgv1.MachineOSConfig{}
	if err := env.ControlPlane.Client.Get(ctx, client.ObjectKey{Name: "layered-image"}, mosc); err != nil {
		t.Fatalf("docs' MachineOSConfig not stored: %v", err)
	}
	if mosc.Spec.RenderedImagePushSecret.Name != PushSecretName || mosc.Spec.BaseImagePullSecret.Name != BasePullSecretName {
		t.Errorf("MachineOSConfig secrets %+v / %+v", mosc.Spec.RenderedImagePushSecret, mosc.Spec.BaseImagePullSecret)
	}
	// The secrets it names exist, with the registry's credentials, in the types the docs' cluster has.
	for name, typ := range map[string]corev1.SecretType{PushSecretName: corev1.SecretTypeDockercfg, BasePullSecretName: corev1.SecretTypeDockerConfigJson} {
		s := &corev1.Secret{}
		if err := env.ControlPlane.Client.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: name}, s); err != nil {
			t.Fatalf("secret %s: %v", name, err)
		}
		if s.Type != typ {
			t.Errorf("secret %s type %s, want %s", name, s.Type, typ)
		}
	}
	pool := &mcfgv1.MachineConfigPool{}
	if err := env.ControlPlane.Client.Get(ctx, client.ObjectKey{Name: "layered-image"}, pool); err != nil {
		t.Fatalf("pool layered-image: %v", err)
	}
	if _, ok := pool.Spec.NodeSelector.MatchLabels["node-role.kubernetes.io/layered-image"]; !ok {
		t.Errorf("pool layered-image node selector %v", pool.Spec.NodeSelector)
	}
	// The base image is really in the registry, under the digest the demo printed.
	info, err := registry.Inspect(ctx, env.Registry.SystemContext(), env.BaseImage)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(env.BaseImage, "@"+info.Digest.String()) {
		t.Errorf("base image %s, registry digest %s", env.BaseImage, info.Digest)
	}
	if !strings.Contains(out.String(), "renderedImagePushSpec: image-registry.openshift-image-registry.svc:5000/openshift/os-image:latest") {
		t.Errorf("demo output does not show the stored MachineOSConfig:\n%s", out.String())
	}
}
