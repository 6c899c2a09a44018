package simnode_test

import (
	"context"
	"strings"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/builder/buildah/buildahtest"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/local"
	"github.com/imagemode/imagemode/machineos/osbuild"
)

// layeredFile is what the layered image adds under /usr.
const layeredFile = "/usr/share/imagemode-layered"

// testLayeredPool: without the build service, a layered image is built with buildah on the base image,
// pushed, and published as the succeeded build of the layered-image pool's MachineOSConfig. The pool's node
// rebases to it with one reboot; a layer-only change (new config, same image) is applied rebootless; leaving
// the pool (label removed) brings the node back to the worker config and the base image in one reboot.
func testLayeredPool(t *testing.T, ctx context.Context, env *local.Env) {
	c := env.ControlPlane.Client
	node := startNodeSpec(t, ctx, env, nodeSpec{name: "layered-0", pools: []string{"worker", "layered-image"}, delete: true})
	cfg1 := poolTarget(t, ctx, c, "layered-image", "")
	waitNode(t, ctx, c, node, "the first config", doneOn(cfg1))

	image := buildLayeredImage(ctx, t, env)
	mosc := &mcfgv1.MachineOSConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "layered-image"},
		Spec: mcfgv1.MachineOSConfigSpec{
			MachineConfigPool:       mcfgv1.MachineConfigPoolReference{Name: "layered-image"},
			ImageBuilder:            mcfgv1.MachineOSImageBuilder{ImageBuilderType: mcfgv1.JobBuilder},
			RenderedImagePushSecret: mcfgv1.ImageSecretObjectReference{Name: local.PushSecretName},
			RenderedImagePushSpec:   mcfgv1.ImageTagFormat(env.Registry.Ref("os/layered", ":latest")),
		},
	}
	if err := c.Create(ctx, mosc); err != nil {
		t.Fatal(err)
	}
	publishBuild(ctx, t, c, mosc, "layered-image-1", cfg1, image)

	n := waitNode(t, ctx, c, node, "the layered image", func(n *corev1.Node) bool {
		return doneOn(cfg1)(n) && n.Annotations[wellknown.CurrentImageAnnotation] == image
	})
	if node.Reboots() != 1 {
		t.Errorf("%d reboots into the layered image, want 1", node.Reboots())
	}
	if got := hostFile(node, layeredFile); got != "layered\n" {
		t.Errorf("%s = %q after booting the layered image", layeredFile, got)
	}
	if got := hostFile(node, "/etc/imagemode/role"); got != "worker\n" {
		t.Errorf("/etc/imagemode/role = %q in the layered pool", got)
	}
	if n.Annotations[wellknown.DesiredImageAnnotation] != image {
		t.Errorf("desiredImage %q, want %q", n.Annotations[wellknown.DesiredImageAnnotation], image)
	}
	// On the sysroot: the layered deployment is booted and the default boot entry, the base one kept
	// after it for rollback.
	var baseCommit string
	pulls := node.Host.Pulls()
	if ostreeNode(t, node) {
		entries := bootEntries(t, node)
		if len(entries) != 2 || entries[0].Deployment != bootedDeployment(node) {
			t.Fatalf("boot entries after the pivot: %+v (booted %s)", entries, bootedDeployment(node))
		}
		if o := originOf(t, node, entries[0].Deployment); !strings.Contains(o, "container-image-reference=ostree-unverified-registry:"+image+"\n") {
			t.Errorf("origin of the booted deployment:\n%s", o)
		}
		if o := originOf(t, node, entries[1].Deployment); !strings.Contains(o, "container-image-reference=ostree-unverified-registry:"+env.BaseImage+"\n") {
			t.Errorf("origin of the rollback deployment:\n%s", o)
		}
		baseCommit = checksumOf(entries[1].Deployment)
	}

	// Layer-only change: a new config of the pool, built into "the same" image (same digest): files only,
	// with the disruption policy (None here), no reboot.
	const nm = "/etc/nmstate/openshift/layered.yml"
	if err := c.Create(ctx, roleConfig("50-layered-image-nm", "layered-image", filesIgn(map[string]string{nm: "layered\n"}, ""))); err != nil {
		t.Fatal(err)
	}
	cfg2 := poolTarget(t, ctx, c, "layered-image", cfg1)
	publishBuild(ctx, t, c, mosc, "layered-image-2", cfg2, image)
	waitNode(t, ctx, c, node, "the layer-only change", func(n *corev1.Node) bool {
		return doneOn(cfg2)(n) && n.Annotations[wellknown.CurrentImageAnnotation] == image
	})
	if node.Reboots() != 1 {
		t.Errorf("%d reboots after the layer-only change, want still 1", node.Reboots())
	}
	if got := hostFile(node, nm); got != "layered\n" {
		t.Errorf("%s = %q after the layer-only change", nm, got)
	}

	// Leaving the layered pool: back to the worker config and the base image, in one reboot.
	if err := c.Get(ctx, client.ObjectKey{Name: node.Name()}, n); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(n.DeepCopy())
	delete(n.Labels, local.NodeRoleLabelPrefix+"layered-image")
	if err := c.Patch(ctx, n, patch); err != nil {
		t.Fatal(err)
	}
	worker := &mcfgv1.MachineConfigPool{}
	if err := c.Get(ctx, client.ObjectKey{Name: "worker"}, worker); err != nil {
		t.Fatal(err)
	}
	n = waitNode(t, ctx, c, node, "back in the worker pool", func(n *corev1.Node) bool {
		_, hasImage := n.Annotations[wellknown.CurrentImageAnnotation]
		return doneOn(worker.Spec.Configuration.Name)(n) && !hasImage
	})
	if _, ok := n.Annotations[wellknown.DesiredImageAnnotation]; ok {
		t.Errorf("desiredImage still set after leaving the layered pool: %v", n.Annotations)
	}
	if node.Reboots() != 2 {
		t.Errorf("%d reboots in all, want 2 (leaving the layered pool takes one)", node.Reboots())
	}
	st, err := node.Host.OS().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.BootedImage() != env.BaseImage {
		t.Errorf("booted %s after leaving the layered pool, want the base image %s", st.BootedImage(), env.BaseImage)
	}
	// The base image came back from the rollback deployment's commit: no pull, the same commit deployed
	// again (with /etc merged), the layered deployment now the rollback.
	if got := node.Host.Pulls(); got != pulls {
		t.Errorf("%d pulls leaving the layered pool, want none (the rollback deployment has the base image)", got-pulls)
	}
	if ostreeNode(t, node) {
		entries := bootEntries(t, node)
		if len(entries) != 2 || entries[0].Deployment != bootedDeployment(node) || checksumOf(entries[0].Deployment) != baseCommit {
			t.Errorf("boot entries after leaving the layered pool: %+v (booted %s, base commit %s)", entries, bootedDeployment(node), baseCommit)
		} else if o := originOf(t, node, entries[1].Deployment); !strings.Contains(o, image) {
			t.Errorf("rollback deployment after leaving the layered pool:\n%s", o)
		}
	}
	for p, want := range map[string]string{
		layeredFile:            "<absent>",
		nm:                     "<absent>",
		"/etc/imagemode/role":  "worker\n",
		"/etc/layered-ship.cf": "<absent>",
	} {
		if got := hostFile(node, p); got != want {
			t.Errorf("after leaving the layered pool %s = %q, want %q", p, got, want)
		}
	}
}

// buildLayeredImage builds a layered image on the environment's base image with buildah (it adds
// layeredFile, and an /etc file standing for the rendered config the real build bakes in) and pushes it,
// returning its repo@digest.
func buildLayeredImage(ctx context.Context, t *testing.T, env *local.Env) string {
	t.Helper()
	containerfile := "FROM " + env.BaseImage + "\nRUN echo layered > " + layeredFile +
		" && echo shipped > /etc/layered-ship.cf && ostree container commit\n"
	return buildahtest.BuildAndPush(ctx, t, env.Registry.SystemContext(), containerfile, env.Registry.Ref("os/layered", ":v1"))
}

// publishBuild records what the build service would after a successful build of config for mosc: a
// MachineOSBuild with status Succeeded and the image, named by the MachineOSConfig's
// current-machine-os-build annotation and status.currentImagePullSpec.
func publishBuild(ctx context.Context, t *testing.T, c client.Client, mosc *mcfgv1.MachineOSConfig, name, config, image string) {
	t.Helper()
	mosb := &mcfgv1.MachineOSBuild{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: mcfgv1.MachineOSBuildSpec{
			MachineConfig:         mcfgv1.MachineConfigReference{Name: config},
			MachineOSConfig:       mcfgv1.MachineOSConfigReference{Name: mosc.Name},
			RenderedImagePushSpec: mosc.Spec.RenderedImagePushSpec,
		},
	}
	if err := c.Create(ctx, mosb); err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	start := metav1.NewTime(now.Add(-time.Minute))
	err := retry.OnError(retry.DefaultRetry, func(err error) bool { return apierrors.IsConflict(err) || apierrors.IsNotFound(err) }, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(mosb), mosb); err != nil {
			return err
		}
		mosb.Status = mcfgv1.MachineOSBuildStatus{
			Conditions:            osbuild.Conditions(osbuild.StateSucceeded, nil, now),
			DigestedImagePushSpec: mcfgv1.ImageDigestFormat(image),
			BuildStart:            &start,
			BuildEnd:              &now,
		}
		return c.Status().Update(ctx, mosb)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(mosc), mosc); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(mosc.DeepCopy())
	if mosc.Annotations == nil {
		mosc.Annotations = map[string]string{}
	}
	mosc.Annotations[wellknown.CurrentMachineOSBuildAnnotation] = name
	if err := c.Patch(ctx, mosc, patch); err != nil {
		t.Fatal(err)
	}
	statusPatch := client.MergeFrom(mosc.DeepCopy())
	mosc.Status.CurrentImagePullSpec = mcfgv1.ImageDigestFormat(image)
	mosc.Status.ObservedGeneration = mosc.Generation
	if err := c.Status().Patch(ctx, mosc, statusPatch); err != nil {
		t.Fatal(err)
	}
}
