package rebuildcmd

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/cmd/imagemode/internal/clients"
	"github.com/imagemode/imagemode/internal/controlplane"
	"github.com/imagemode/imagemode/internal/wellknown"
)

const (
	moscName = "layered-image"
	build    = "layered-image-0123"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newBuild(ctx context.Context, t *testing.T, c client.Client, state string) {
	t.Helper()
	b := &mcfgv1.MachineOSBuild{ObjectMeta: metav1.ObjectMeta{Name: build}}
	b.Spec.MachineConfig.Name = "rendered-layered-image-1"
	b.Spec.MachineOSConfig.Name = moscName
	b.Spec.RenderedImagePushSpec = "registry.example.com/os:" + build
	require.NoError(t, c.Create(ctx, b))
	setState(ctx, t, c, state)
}

func setState(ctx context.Context, t *testing.T, c client.Client, state string) {
	t.Helper()
	b := &mcfgv1.MachineOSBuild{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Name: build}, b))
	b.Status.Conditions = nil
	for _, typ := range []string{"Prepared", "Building", "Failed", "Interrupted", "Succeeded"} {
		s := metav1.ConditionFalse
		if typ == state {
			s = metav1.ConditionTrue
		}
		b.Status.Conditions = append(b.Status.Conditions, metav1.Condition{Type: typ, Status: s, Reason: typ, Message: typ, LastTransitionTime: metav1.Now()})
	}
	require.NoError(t, c.Status().Update(ctx, b))
}

func mosc(ctx context.Context, t *testing.T, c client.Client) *mcfgv1.MachineOSConfig {
	t.Helper()
	m := &mcfgv1.MachineOSConfig{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Name: moscName}, m))
	return m
}

func run(ctx context.Context, cs *clients.Clients, out *lockedBuffer, args ...string) error {
	cmd := NewCommand(func() (*clients.Clients, error) { return cs, nil })
	cmd.SetOut(out)
	cmd.SetErr(out)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	cmd.SetArgs(append([]string{}, args...))
	return cmd.ExecuteContext(ctx)
}

func TestRebuildOnAPIServer(t *testing.T) {
	cp := controlplane.Start(t, controlplane.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := cp.Client
	cs, err := clients.New(cp.Config)
	require.NoError(t, err)

	m := &mcfgv1.MachineOSConfig{ObjectMeta: metav1.ObjectMeta{Name: moscName,
		Annotations: map[string]string{wellknown.CurrentMachineOSBuildAnnotation: build}}}
	m.Spec.MachineConfigPool.Name = moscName
	m.Spec.ImageBuilder.ImageBuilderType = mcfgv1.JobBuilder
	m.Spec.RenderedImagePushSecret.Name = "push"
	m.Spec.RenderedImagePushSpec = "registry.example.com/os:latest"
	require.NoError(t, c.Create(ctx, m))
	newBuild(ctx, t, c, "Succeeded")

	// Not on a terminal and without --wait: only the annotation.
	var out lockedBuffer
	require.NoError(t, run(ctx, cs, &out, moscName))
	assert.Equal(t, "machineosconfig/layered-image: rebuild requested\n", out.String())
	assert.Contains(t, mosc(ctx, t, c).Annotations, wellknown.RebuildAnnotation)

	err = run(ctx, cs, &out, "nope")
	assert.ErrorContains(t, err, "reading machineosconfig nope")

	// --wait: the build service (played here) deletes the build, creates it again, removes the annotation
	// and builds; the command follows, one plain line per state, and fails with the build.
	out = lockedBuffer{}
	waited := make(chan error, 1)
	go func() { waited <- run(ctx, cs, &out, moscName, "--wait") }()
	seen := func(s string) {
		t.Helper()
		require.Eventually(t, func() bool { return strings.Contains(out.String(), s) }, 20*time.Second, 20*time.Millisecond, out.String())
	}
	seen("waiting for the build service to start the rebuild")
	require.NoError(t, c.Delete(ctx, &mcfgv1.MachineOSBuild{ObjectMeta: metav1.ObjectMeta{Name: build}}))
	newBuild(ctx, t, c, "Building")
	cur := mosc(ctx, t, c)
	delete(cur.Annotations, wellknown.RebuildAnnotation)
	require.NoError(t, c.Update(ctx, cur))
	seen("machineosbuild/" + build + ": Building")
	setState(ctx, t, c, "Failed")
	select {
	case err := <-waited:
		require.Error(t, err)
		assert.True(t, errors.Is(err, ErrBuildDidNotSucceed), err)
	case <-ctx.Done():
		t.Fatal("rebuild --wait did not end")
	}
	assert.Equal(t, "machineosconfig/layered-image: rebuild requested\n"+
		"machineosconfig/layered-image: waiting for the build service to start the rebuild\n"+
		"machineosbuild/layered-image-0123: Building\n"+
		"machineosbuild/layered-image-0123: Failed\n", out.String())
	assert.NotContains(t, out.String(), "\x1b")
}
