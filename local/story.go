package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/examples"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos"
	"github.com/imagemode/imagemode/machineos/osbuild"
	"github.com/imagemode/imagemode/registry"
)

// The docs' story's names.
const (
	LayeredPool = "layered-image"
	LayeredNode = "worker-1"
	// AddedFile is the file the docs' Containerfile installs (dnf install -y cowsay).
	AddedFile = "/usr/bin/cowsay"
	// NoneFile is the file the story's MachineConfig writes, under a path whose disruption policy is None.
	NoneFile = "/etc/nmstate/openshift/imagemode-demo.yml"
)

const stepTimeout = 3 * time.Minute

// Demo runs the docs' story on the environment, each part a timed step: start the control plane, registry
// and controllers, three simulated nodes running the daemon; label a node into the layered-image pool;
// apply the docs' MachineOSConfig and follow its build and the node's reboot into the image; a files-only
// MachineConfig (policy None: no rebuild, no reboot); the rebuild annotation; the node leaving the pool
// (back to the base image in one reboot); deleting the MachineOSConfig (its images pruned).
func (e *Env) Demo(ctx context.Context, steps *Steps) error {
	out := steps.Out
	steps.Run("control plane: etcd, kube-apiserver + CRDs, kube-controller-manager", func() error {
		return e.StartControlPlane(ctx)
	})
	steps.Run("registry: TLS, htpasswd auth, deletes enabled", func() error {
		if err := e.StartRegistry(ctx); err != nil {
			return err
		}
		fmt.Fprintf(out, "    registry https://%s (CA %s)\n", e.Registry.Host, filepath.Join(e.Registry.CertDir, "ca.crt"))
		return nil
	})
	steps.Run("base OS image pushed", func() error {
		if err := e.PushBaseImage(ctx); err != nil {
			return err
		}
		fmt.Fprintf(out, "    %s\n", e.BaseImage)
		return nil
	})
	steps.Run("namespace, pull/push secrets, ControllerConfig, pools master/worker/layered-image", func() error {
		return e.CreateClusterObjects(ctx)
	})
	steps.Run("controllers: render, rollout, drain, build service + local pod runner, registry GC; pools rendered", func() error {
		if err := e.StartControllers(ctx); err != nil {
			return err
		}
		if err := e.WaitPoolsRendered(ctx, time.Minute); err != nil {
			return fmt.Errorf("waiting for pools to render: %w", err)
		}
		return e.show(ctx, out, "get", "machineconfigpool", "-o",
			"custom-columns=NAME:.metadata.name,RENDERED (spec.configuration):.spec.configuration.name,SOURCES:.spec.configuration.source[*].name")
	})
	steps.Run("3 simulated nodes (base OS image from the registry) running the daemon", func() error {
		if err := e.StartNodes(ctx, DefaultNodes, ctrl.Log.WithName("daemon")); err != nil {
			return err
		}
		for _, n := range DefaultNodes {
			if _, err := e.waitNodeDone(ctx, n.Name, ""); err != nil {
				return err
			}
		}
		return e.showNodes(ctx, out)
	})
	steps.Run("kubectl label node worker-1 into pool layered-image", func() error {
		if err := e.show(ctx, out, "label", "node", LayeredNode, NodeRoleLabelPrefix+LayeredPool+"="); err != nil {
			return err
		}
		_, err := e.waitNodeDone(ctx, LayeredNode, "rendered-"+LayeredPool+"-")
		return err
	})
	var image string
	steps.Run("kubectl apply -f the docs' MachineOSConfig", func() error {
		raw, err := examples.Doc(examples.MachineOSConfigLayeredImage)
		if err != nil {
			return err
		}
		docsPush := DocsRegistryHostname + ":" + DocsRegistryPort
		if e.Registry.Host != docsPush {
			raw = []byte(strings.ReplaceAll(string(raw), docsPush, e.Registry.Host))
			fmt.Fprintf(out, "    (push spec host %s replaced by this registry's %s: run with the docs' registry host for the YAML byte for byte)\n",
				docsPush, e.Registry.Host)
		}
		return e.show(ctx, out, "apply", "-f", "-", raw)
	})
	steps.Run("the build: kubectl get machineosbuild", func() error {
		var err error
		image, err = e.followBuild(ctx, out, "")
		if err != nil {
			return err
		}
		if err := e.show(ctx, out, "get", "machineosbuild"); err != nil {
			return err
		}
		fmt.Fprintf(out, "    machineosconfig/%s status.currentImagePullSpec: %s\n", LayeredPool, image)
		return nil
	})
	steps.Run("rollout: worker-1 drains, reboots into the image; the Containerfile's file is on it", func() error {
		n, err := e.waitNodeImage(ctx, LayeredNode, image)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "    %s: currentImage %s, state %s, reboots %d, lastAppliedDrain %s\n", LayeredNode,
			n.Annotations[wellknown.CurrentImageAnnotation], n.Annotations[wellknown.StateAnnotation],
			e.Node(LayeredNode).Reboots(), n.Annotations[wellknown.LastAppliedDrainAnnotation])
		return e.proveFile(out, AddedFile)
	})
	steps.Run("MachineConfig writing "+NoneFile+" (policy None): no rebuild, no reboot", func() error {
		return e.noneChange(ctx, out)
	})
	steps.Run("kubectl annotate machineosconfig rebuild: a new build, the annotation removed", func() error {
		if err := e.show(ctx, out, "annotate", "machineosconfig", LayeredPool, wellknown.RebuildAnnotation+"="); err != nil {
			return err
		}
		next, err := e.followBuild(ctx, out, image)
		if err != nil {
			return err
		}
		mosc := &mcfgv1.MachineOSConfig{}
		if err := e.ControlPlane.Client.Get(ctx, client.ObjectKey{Name: LayeredPool}, mosc); err != nil {
			return err
		}
		if _, ok := mosc.Annotations[wellknown.RebuildAnnotation]; ok {
			return fmt.Errorf("the rebuild annotation is still on machineosconfig/%s", LayeredPool)
		}
		fmt.Fprintf(out, "    new image %s (annotation removed)\n", next)
		image = next
		_, err = e.waitNodeImage(ctx, LayeredNode, image)
		return err
	})
	steps.Run("kubectl label node worker-1 out of the pool: back to the base image in one reboot", func() error {
		before := e.Node(LayeredNode).Reboots()
		if err := e.show(ctx, out, "label", "node", LayeredNode, NodeRoleLabelPrefix+LayeredPool+"-"); err != nil {
			return err
		}
		n, err := e.waitNodeDone(ctx, LayeredNode, "rendered-"+wellknown.WorkerPool+"-")
		if err != nil {
			return err
		}
		if _, ok := n.Annotations[wellknown.CurrentImageAnnotation]; ok {
			return fmt.Errorf("%s still has a currentImage annotation", LayeredNode)
		}
		reboots := e.Node(LayeredNode).Reboots() - before
		st, err := e.Node(LayeredNode).Host.OS().Status(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "    %s booted %s after %d reboot(s)\n", LayeredNode, st.BootedImage(), reboots)
		if reboots != 1 || !strings.HasSuffix(e.BaseImage, st.BootedImageDigest()) {
			return fmt.Errorf("%s: %d reboots, booted %s; want 1 reboot into %s", LayeredNode, reboots, st.BootedImage(), e.BaseImage)
		}
		if _, err := os.Stat(e.Node(LayeredNode).Host.Root().HostPath(AddedFile)); err == nil {
			return fmt.Errorf("%s still has %s", LayeredNode, AddedFile)
		}
		return nil
	})
	steps.Run("kubectl delete machineosconfig: its builds and images pruned from the registry", func() error {
		return e.deleteMOSC(ctx, out)
	})
	return steps.Err()
}

// show runs kubectl with args (the last one may be stdin as []byte) and prints its output indented.
func (e *Env) show(ctx context.Context, out interface{ Write([]byte) (int, error) }, args ...any) error {
	var stdin []byte
	var strs []string
	for _, a := range args {
		switch v := a.(type) {
		case string:
			strs = append(strs, v)
		case []byte:
			stdin = v
		}
	}
	res, err := e.ControlPlane.Kubectl(ctx, stdin, strs...)
	fmt.Fprint(out, indent(res))
	return err
}

func (e *Env) showNodes(ctx context.Context, out interface{ Write([]byte) (int, error) }) error {
	return e.show(ctx, out, "get", "nodes", "-l", "!imagemode.io/local-pod-runner", "-o",
		`custom-columns=NAME:.metadata.name,STATE:.metadata.annotations.machineconfiguration\.openshift\.io/state,`+
			`CURRENT:.metadata.annotations.machineconfiguration\.openshift\.io/currentConfig,`+
			`IMAGE:.metadata.annotations.machineconfiguration\.openshift\.io/currentImage`)
}

// waitNodeDone waits until the node is Done on its desired config, whose name starts with prefix.
func (e *Env) waitNodeDone(ctx context.Context, name, prefix string) (*corev1.Node, error) {
	return e.waitNode(ctx, name, "Done on a config "+prefix+"…", func(n *corev1.Node) bool {
		a := n.Annotations
		cur := a[wellknown.CurrentConfigAnnotation]
		return cur != "" && cur == a[wellknown.DesiredConfigAnnotation] && strings.HasPrefix(cur, prefix) &&
			a[wellknown.StateAnnotation] == wellknown.NodeStateDone && !n.Spec.Unschedulable
	})
}

// waitNodeImage waits until the node is Done on image.
func (e *Env) waitNodeImage(ctx context.Context, name, image string) (*corev1.Node, error) {
	return e.waitNode(ctx, name, "Done on image "+image, func(n *corev1.Node) bool {
		a := n.Annotations
		return a[wellknown.CurrentImageAnnotation] == image && a[wellknown.DesiredImageAnnotation] == image &&
			a[wellknown.CurrentConfigAnnotation] == a[wellknown.DesiredConfigAnnotation] &&
			a[wellknown.StateAnnotation] == wellknown.NodeStateDone && !n.Spec.Unschedulable
	})
}

func (e *Env) waitNode(ctx context.Context, name, what string, cond func(*corev1.Node) bool) (*corev1.Node, error) {
	node := &corev1.Node{}
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, stepTimeout, true, func(ctx context.Context) (bool, error) {
		if n := e.Node(name); n != nil && n.Err() != nil {
			return false, n.Err()
		}
		if err := e.ControlPlane.Client.Get(ctx, client.ObjectKey{Name: name}, node); err != nil {
			return false, err
		}
		return cond(node), nil
	})
	if err != nil {
		return nil, fmt.Errorf("node %s never got %s (state %q, reason %q): %w", name, what,
			node.Annotations[wellknown.StateAnnotation], node.Annotations[wellknown.ReasonAnnotation], err)
	}
	return node, nil
}

// followBuild prints the state changes of the layered pool's builds until its MachineOSConfig has a current
// image other than previous, and returns it; a failed build is an error.
func (e *Env) followBuild(ctx context.Context, out interface{ Write([]byte) (int, error) }, previous string) (string, error) {
	seen := map[string]string{}
	var image string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, stepTimeout, true, func(ctx context.Context) (bool, error) {
		var builds mcfgv1.MachineOSBuildList
		if err := e.ControlPlane.Client.List(ctx, &builds); err != nil {
			return false, err
		}
		for i := range builds.Items {
			b := &builds.Items[i]
			state := string(osbuild.StateOf(b))
			if state == "" {
				state = "pending"
			}
			if seen[b.Name] != state {
				if seen[b.Name] == "" {
					fmt.Fprintf(out, "    machineosbuild/%s: %s\n", b.Name, strings.ToUpper(state))
				} else {
					fmt.Fprintf(out, "    machineosbuild/%s: %s → %s\n", b.Name, strings.ToUpper(seen[b.Name]), strings.ToUpper(state))
				}
				seen[b.Name] = state
			}
			if state == string(osbuild.StateFailed) {
				return false, fmt.Errorf("machineosbuild/%s failed: %s", b.Name, conditionMessage(b))
			}
		}
		mosc := &mcfgv1.MachineOSConfig{}
		if err := e.ControlPlane.Client.Get(ctx, client.ObjectKey{Name: LayeredPool}, mosc); err != nil {
			return false, err
		}
		image = string(mosc.Status.CurrentImagePullSpec)
		return image != "" && image != previous, nil
	})
	return image, err
}

func conditionMessage(b *mcfgv1.MachineOSBuild) string {
	for _, c := range b.Status.Conditions {
		if c.Status == "True" {
			return c.Reason + ": " + c.Message
		}
	}
	return ""
}

// proveFile shows that the layered node has the file the Containerfile added and the others do not.
func (e *Env) proveFile(out interface{ Write([]byte) (int, error) }, p string) error {
	for _, n := range e.Nodes {
		_, err := os.Stat(n.Host.Root().HostPath(p))
		has := err == nil
		fmt.Fprintf(out, "    %s: %s %s\n", n.Name(), p, map[bool]string{true: "present", false: "absent"}[has])
		if has != (n.Name() == LayeredNode) {
			return fmt.Errorf("node %s: %s present=%t", n.Name(), p, has)
		}
	}
	return nil
}

// noneChange adds a worker MachineConfig that writes NoneFile: both workers get it without a reboot, and
// the layered pool reuses its image (a MachineOSBuild pointing at it, no Job).
func (e *Env) noneChange(ctx context.Context, out interface{ Write([]byte) (int, error) }) error {
	reboots := map[string]int{}
	for _, n := range e.Nodes {
		reboots[n.Name()] = n.Reboots()
	}
	// The configs the two pools render before the change; both must move to a new one.
	before := map[string]string{}
	pools := map[string]*mcfgv1.MachineConfigPool{}
	for _, name := range []string{wellknown.WorkerPool, LayeredPool} {
		p := &mcfgv1.MachineConfigPool{}
		if err := e.ControlPlane.Client.Get(ctx, client.ObjectKey{Name: name}, p); err != nil {
			return err
		}
		before[name], pools[name] = p.Spec.Configuration.Name, p
	}
	pool := pools[LayeredPool]
	mc := fmt.Sprintf(`apiVersion: machineconfiguration.openshift.io/v1
kind: MachineConfig
metadata:
  name: 50-worker-demo-file
  labels:
    machineconfiguration.openshift.io/role: worker
spec:
  config:
    ignition:
      version: 3.4.0
    storage:
      files:
      - path: %s
        mode: 0644
        contents:
          source: data:,hello%%20from%%20imagemode%%0A
`, NoneFile)
	if err := e.show(ctx, out, "apply", "-f", "-", []byte(mc)); err != nil {
		return err
	}
	for name, p := range pools {
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, stepTimeout, true, func(ctx context.Context) (bool, error) {
			err := e.ControlPlane.Client.Get(ctx, client.ObjectKey{Name: name}, p)
			return err == nil && p.Spec.Configuration.Name != before[name], err
		})
		if err != nil {
			return fmt.Errorf("pool %s never rendered the new config: %w", name, err)
		}
	}
	for _, n := range []string{"worker-0", LayeredNode} {
		target := pools[wellknown.WorkerPool].Spec.Configuration.Name
		if n == LayeredNode {
			target = pool.Spec.Configuration.Name
		}
		if _, err := e.waitNodeDone(ctx, n, target); err != nil {
			return err
		}
		data, err := os.ReadFile(e.Node(n).Host.Root().HostPath(NoneFile))
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "    %s: %s = %q, reboots %d → %d\n", n, NoneFile, string(data), reboots[n], e.Node(n).Reboots())
		if e.Node(n).Reboots() != reboots[n] {
			return fmt.Errorf("node %s rebooted for a change whose policy is None", n)
		}
	}
	var builds mcfgv1.MachineOSBuildList
	if err := e.ControlPlane.Client.List(ctx, &builds); err != nil {
		return err
	}
	for _, b := range builds.Items {
		if b.Spec.MachineConfig.Name == pool.Spec.Configuration.Name {
			from := b.Annotations[machineos.ReusedFromAnnotation]
			fmt.Fprintf(out, "    machineosbuild/%s reuses the image of %s: no build\n", b.Name, from)
			if from == "" {
				return fmt.Errorf("machineosbuild/%s was built for a files-only change", b.Name)
			}
		}
	}
	return nil
}

// deleteMOSC deletes the layered pool's MachineOSConfig and waits until its builds are gone and none of
// their images is left in the registry.
func (e *Env) deleteMOSC(ctx context.Context, out interface{ Write([]byte) (int, error) }) error {
	var builds mcfgv1.MachineOSBuildList
	if err := e.ControlPlane.Client.List(ctx, &builds); err != nil {
		return err
	}
	var images []string
	for _, b := range builds.Items {
		if img := string(b.Status.DigestedImagePushSpec); img != "" && !slices.Contains(images, img) {
			images = append(images, img)
		}
	}
	if err := e.show(ctx, out, "delete", "machineosconfig", LayeredPool); err != nil {
		return err
	}
	sys := e.Registry.SystemContext()
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, stepTimeout, true, func(ctx context.Context) (bool, error) {
		var left mcfgv1.MachineOSBuildList
		if err := e.ControlPlane.Client.List(ctx, &left); err != nil || len(left.Items) > 0 {
			return false, err
		}
		for _, img := range images {
			if ok, err := registry.Exists(ctx, sys, img); err != nil || ok {
				return false, err
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the builds and %d images to be deleted: %w", len(images), err)
	}
	for _, img := range images {
		fmt.Fprintf(out, "    deleted from the registry: %s\n", img)
	}
	return nil
}
