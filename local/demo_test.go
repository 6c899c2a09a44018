package local

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/builder/buildah"
	"github.com/imagemode/imagemode/internal/wellknown"
)

func TestMain(m *testing.M) {
	if buildah.Reexec() {
		return
	}
	RunBuilderIfRequested()     // the local pod runner runs build pods with this test binary
	RunControllersIfRequested() // BenchmarkScaleRollout runs the controllers in a child process
	os.Exit(m.Run())
}

// TestDemo runs the README's main command's story and checks its effects on the real parts.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test (skipped with -short)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
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
	t.Log(out.String())
	if len(steps.Results) != 14 {
		t.Errorf("%d steps ran, want 14", len(steps.Results))
	}
	c := env.ControlPlane.Client

	// The story's output shows what a user looks at: the build's states, the image, the file.
	for _, want := range []string{"PREPARED", "BUILDING", "SUCCEEDED", "status.currentImagePullSpec: ", "/usr/bin/cowsay present",
		"reuses the image of", "deleted from the registry: "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	// At the end: the MachineOSConfig and its builds are gone, every node is Done on its pool's config, the
	// layered node back on the base image, and the files-only config's file is on the workers.
	var moscs mcfgv1.MachineOSConfigList
	var builds mcfgv1.MachineOSBuildList
	if err := c.List(ctx, &moscs); err != nil || len(moscs.Items) != 0 {
		t.Errorf("MachineOSConfigs left: %d (%v)", len(moscs.Items), err)
	}
	if err := c.List(ctx, &builds); err != nil || len(builds.Items) != 0 {
		t.Errorf("MachineOSBuilds left: %d (%v)", len(builds.Items), err)
	}
	for _, spec := range DefaultNodes {
		node := &corev1.Node{}
		if err := c.Get(ctx, client.ObjectKey{Name: spec.Name}, node); err != nil {
			t.Fatal(err)
		}
		a := node.Annotations
		if a[wellknown.StateAnnotation] != wellknown.NodeStateDone || !strings.HasPrefix(a[wellknown.CurrentConfigAnnotation], "rendered-"+spec.Role+"-") {
			t.Errorf("node %s: state %q on %q", spec.Name, a[wellknown.StateAnnotation], a[wellknown.CurrentConfigAnnotation])
		}
		n := env.Node(spec.Name)
		st, err := n.Host.OS().Status(ctx)
		if err != nil || !strings.HasSuffix(env.BaseImage, st.BootedImageDigest()) {
			t.Errorf("node %s booted %v (%v), want the base image", spec.Name, st, err)
		}
		if spec.Role == wellknown.WorkerPool {
			if _, err := os.Stat(n.Host.Root().HostPath(NoneFile)); err != nil {
				t.Errorf("node %s: %v", spec.Name, err)
			}
		}
	}
	if got := env.Node(LayeredNode).Reboots(); got != 3 {
		t.Errorf("%s rebooted %d times, want 3 (into the image, into the rebuilt image, back to the base)", LayeredNode, got)
	}
}
