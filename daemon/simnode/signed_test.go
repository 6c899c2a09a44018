package simnode_test

import (
	"context"
	"strings"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/imagemode/imagemode/daemon"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/local"
	"github.com/imagemode/imagemode/registry/signing"
	"github.com/imagemode/imagemode/registry/signing/signingtest"
	"github.com/imagemode/imagemode/testimages"
)

// TestSignedPool: the layered pool's repository has trusted keys (the build service's ConfigMap). The node
// writes the signature policy (policy.json, registries.d) and rolls out the signed image as
// ostree-image-signed; then an image pushed by hand to the same repository without a signature, one carrying
// a copy of another image's valid signature, and one signed by another key are each refused on the node: it
// goes Degraded saying which and stays on its image.
func TestSignedPool(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test (skipped with -short)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	env := startRenderEnv(t, ctx)
	c := env.ControlPlane.Client
	sys := env.Registry.SystemContext()
	push := func(version, tag string) string {
		t.Helper()
		img, err := testimages.Push(ctx, sys, testimages.Options{Version: version}, env.Registry.Ref("os/signed", ":"+tag))
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	signed, unsigned, wrongKey, copied := push("2.0.0", "signed"), push("3.0.0", "by-hand"), push("4.0.0", "other-key"), push("5.0.0", "copied")
	kp, other := signingtest.NewKeyPair(t), signingtest.NewKeyPair(t)
	for img, key := range map[string]signingtest.KeyPair{signed: kp, wrongKey: other} {
		if _, err := signing.Sign(ctx, sys, img, key.Key(t)); err != nil {
			t.Fatal(err)
		}
	}
	if err := signingtest.CopySignatures(ctx, sys, signed, copied); err != nil {
		t.Fatal(err)
	}
	repo := env.Registry.Host + "/os/signed"
	if err := c.Create(ctx, signing.TrustedKeysConfigMap(local.Namespace, signing.TrustedKeysName("layered-image"), repo, [][]byte{kp.PublicPEM})); err != nil {
		t.Fatal(err)
	}

	node := startNodeSpec(t, ctx, env, nodeSpec{name: "signed-0", pools: []string{"worker", "layered-image"}, delete: true})
	cfg := poolTarget(t, ctx, c, "layered-image", "")
	waitNode(t, ctx, c, node, "the first config", doneOn(cfg))
	mosc := &mcfgv1.MachineOSConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "layered-image"},
		Spec: mcfgv1.MachineOSConfigSpec{
			MachineConfigPool:       mcfgv1.MachineConfigPoolReference{Name: "layered-image"},
			ImageBuilder:            mcfgv1.MachineOSImageBuilder{ImageBuilderType: mcfgv1.JobBuilder},
			RenderedImagePushSecret: mcfgv1.ImageSecretObjectReference{Name: local.PushSecretName},
			RenderedImagePushSpec:   mcfgv1.ImageTagFormat(repo + ":latest"),
		},
	}
	if err := c.Create(ctx, mosc); err != nil {
		t.Fatal(err)
	}
	publishBuild(ctx, t, c, mosc, "layered-image-1", cfg, signed)
	waitNode(t, ctx, c, node, "the signed image", func(n *corev1.Node) bool {
		return doneOn(cfg)(n) && n.Annotations[wellknown.CurrentImageAnnotation] == signed
	})
	st, err := node.Host.OS().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Booted == nil || st.Booted.ContainerImageReference != "ostree-image-signed:docker://"+signed {
		t.Fatalf("booted %+v, want the signed image pulled as ostree-image-signed", st.Booted)
	}
	policy := hostFile(node, daemon.SignaturePolicyPath)
	if !strings.Contains(policy, `"sigstoreSigned"`) || !strings.Contains(policy, `"`+repo+`"`) {
		t.Errorf("%s does not require signatures for %s:\n%s", daemon.SignaturePolicyPath, repo, policy)
	}
	regPath, regContent := daemon.SigstoreRegistriesD(repo)
	if got := hostFile(node, regPath); got != string(regContent) {
		t.Errorf("%s = %q", regPath, got)
	}

	// Refused images: the node goes Degraded saying which and stays where it is. A refusal that signing the
	// image with the trusted key fixes is retried until the image is taken; a node failing on an image
	// change cannot be retargeted (the rollout counts it unavailable), so the unfixable one comes last.
	current := signed
	for i, tc := range []struct {
		image, says string
		fix         bool
	}{
		{unsigned, "the image is not signed", true},
		{copied, "the image's signature is for another image", true},
		{wrongKey, "the image is not signed by a trusted key", false},
	} {
		publishBuild(ctx, t, c, mosc, "layered-image-"+string(rune('2'+i)), cfg, tc.image)
		n := waitNode(t, ctx, c, node, "refusing "+tc.image, func(n *corev1.Node) bool {
			return n.Annotations[wellknown.StateAnnotation] == wellknown.NodeStateDegraded && strings.Contains(n.Annotations[wellknown.ReasonAnnotation], tc.says)
		})
		if n.Annotations[wellknown.CurrentImageAnnotation] != current {
			t.Errorf("currentImage %q after refusing %s, want still %s", n.Annotations[wellknown.CurrentImageAnnotation], tc.image, current)
		}
		st, err := node.Host.OS().Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.BootedImage() != current || st.Staged != nil {
			t.Errorf("deployments after refusing %s: %+v", tc.image, st.Deployments)
		}
		if !tc.fix {
			continue
		}
		if _, err := signing.Sign(ctx, sys, tc.image, kp.Key(t)); err != nil {
			t.Fatal(err)
		}
		waitNode(t, ctx, c, node, "taking "+tc.image+" once signed", func(n *corev1.Node) bool {
			return doneOn(cfg)(n) && n.Annotations[wellknown.CurrentImageAnnotation] == tc.image
		})
		current = tc.image
	}
	if node.Reboots() != 3 {
		t.Errorf("%d reboots, want 3 (into each image once it verified)", node.Reboots())
	}
}
