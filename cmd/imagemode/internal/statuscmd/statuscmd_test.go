package statuscmd

import (
	"github.com/imagemode/imagemode/internal/golden"

	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/imagemode/imagemode/cmd/imagemode/internal/clients"
	"github.com/imagemode/imagemode/internal/controlplane"
	"github.com/imagemode/imagemode/internal/wellknown"
)

var (
	digest     = strings.Repeat("0123456789abcdef", 4)
	digested   = "registry.example.com:5000/os/layered@sha256:" + digest
	transition = metav1.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
)

func pool(name string, role string, cond [3]corev1.ConditionStatus, counts [4]int32) (*mcfgv1.MachineConfigPool, func(*mcfgv1.MachineConfigPool)) {
	p := &mcfgv1.MachineConfigPool{ObjectMeta: metav1.ObjectMeta{Name: name}}
	p.Spec.MachineConfigSelector = &metav1.LabelSelector{MatchLabels: map[string]string{wellknown.RoleLabel: name}}
	p.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"node-role.kubernetes.io/" + role: ""}}
	p.Spec.Configuration.Name = "rendered-" + name + "-" + strings.Repeat("a", 32)
	return p, func(p *mcfgv1.MachineConfigPool) {
		p.Status.Configuration.Name = p.Spec.Configuration.Name
		p.Status.MachineCount, p.Status.ReadyMachineCount, p.Status.UpdatedMachineCount, p.Status.DegradedMachineCount = counts[0], counts[1], counts[2], counts[3]
		for i, typ := range []mcfgv1.MachineConfigPoolConditionType{mcfgv1.MachineConfigPoolUpdated, mcfgv1.MachineConfigPoolUpdating, mcfgv1.MachineConfigPoolDegraded} {
			p.Status.Conditions = append(p.Status.Conditions, mcfgv1.MachineConfigPoolCondition{Type: typ, Status: cond[i], LastTransitionTime: transition})
		}
	}
}

func node(name string, roles []string, annotations map[string]string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}, Annotations: annotations}}
	for _, r := range roles {
		n.Labels["node-role.kubernetes.io/"+r] = ""
	}
	return n
}

// createFixture creates three pools (one layered, mid-rollout), a MachineOSConfig with its successful build
// and a second MachineOSConfig (for a pool that does not exist) whose build is missing, and four nodes; it returns the newest creation time.
func createFixture(ctx context.Context, t *testing.T, c client.Client) time.Time {
	t.Helper()
	var newest time.Time
	track := func(o client.Object) {
		if ts := o.GetCreationTimestamp().Time; ts.After(newest) {
			newest = ts
		}
	}
	for _, p := range []struct {
		name, role string
		cond       [3]corev1.ConditionStatus
		counts     [4]int32
	}{
		{"master", "master", [3]corev1.ConditionStatus{"True", "False", "False"}, [4]int32{1, 1, 1, 0}},
		{"worker", "worker", [3]corev1.ConditionStatus{"True", "False", "False"}, [4]int32{1, 1, 1, 0}},
		{"layered-image", "layered-image", [3]corev1.ConditionStatus{"False", "True", "True"}, [4]int32{2, 1, 0, 1}},
	} {
		obj, setStatus := pool(p.name, p.role, p.cond, p.counts)
		require.NoError(t, c.Create(ctx, obj))
		setStatus(obj)
		require.NoError(t, c.Status().Update(ctx, obj))
		track(obj)
	}
	for _, name := range []string{"layered-image", "infra"} {
		m := &mcfgv1.MachineOSConfig{ObjectMeta: metav1.ObjectMeta{Name: name}}
		m.Spec.MachineConfigPool.Name = name
		m.Spec.ImageBuilder.ImageBuilderType = mcfgv1.JobBuilder
		m.Spec.RenderedImagePushSecret.Name = "push"
		m.Spec.RenderedImagePushSpec = "registry.example.com:5000/os/layered:latest"
		m.Annotations = map[string]string{wellknown.CurrentMachineOSBuildAnnotation: name + "-0123"}
		require.NoError(t, c.Create(ctx, m))
		track(m)
		if name == "layered-image" {
			m.Status.CurrentImagePullSpec = mcfgv1.ImageDigestFormat(digested)
			m.Status.ObservedGeneration = m.Generation
			m.Status.MachineOSBuild = &mcfgv1.ObjectReference{Group: wellknown.Group, Resource: "machineosbuilds", Name: name + "-0123"}
			require.NoError(t, c.Status().Update(ctx, m))
		}
	}
	b := &mcfgv1.MachineOSBuild{ObjectMeta: metav1.ObjectMeta{Name: "layered-image-0123"}}
	b.Spec.MachineConfig.Name = "rendered-layered-image-" + strings.Repeat("a", 32)
	b.Spec.MachineOSConfig.Name = "layered-image"
	b.Spec.RenderedImagePushSpec = "registry.example.com:5000/os/layered:layered-image-0123"
	require.NoError(t, c.Create(ctx, b))
	track(b)
	for _, typ := range []string{"Prepared", "Building", "Failed", "Interrupted", "Succeeded"} {
		s := metav1.ConditionFalse
		if typ == "Succeeded" {
			s = metav1.ConditionTrue
		}
		b.Status.Conditions = append(b.Status.Conditions, metav1.Condition{Type: typ, Status: s, Reason: typ, Message: typ, LastTransitionTime: transition})
	}
	b.Status.DigestedImagePushSpec = mcfgv1.ImageDigestFormat(digested)
	require.NoError(t, c.Status().Update(ctx, b))

	w := "rendered-worker-" + strings.Repeat("a", 32)
	l := "rendered-layered-image-" + strings.Repeat("a", 32)
	lOld := "rendered-layered-image-" + strings.Repeat("b", 32)
	for _, n := range []*corev1.Node{
		node("master-0", []string{"master"}, map[string]string{wellknown.CurrentConfigAnnotation: "rendered-master-" + strings.Repeat("a", 32),
			wellknown.DesiredConfigAnnotation: "rendered-master-" + strings.Repeat("a", 32), wellknown.StateAnnotation: "Done"}),
		node("worker-0", []string{"worker"}, map[string]string{wellknown.CurrentConfigAnnotation: w, wellknown.DesiredConfigAnnotation: w, wellknown.StateAnnotation: "Done"}),
		node("worker-1", []string{"worker", "layered-image"}, map[string]string{wellknown.CurrentConfigAnnotation: lOld, wellknown.DesiredConfigAnnotation: l,
			wellknown.DesiredImageAnnotation: digested, wellknown.StateAnnotation: "Working"}),
		node("worker-2", []string{"worker", "layered-image"}, map[string]string{wellknown.CurrentConfigAnnotation: lOld, wellknown.DesiredConfigAnnotation: l,
			wellknown.CurrentImageAnnotation: "registry.example.com:5000/os/layered@sha256:" + strings.Repeat("f", 64),
			wellknown.DesiredImageAnnotation: digested, wellknown.StateAnnotation: "Degraded",
			wellknown.ReasonAnnotation: "failed to pull image: unauthorized\nsecond line"}),
		node("unmanaged-0", nil, nil),
	} {
		require.NoError(t, c.Create(ctx, n))
		track(n)
	}
	return newest
}

func run(ctx context.Context, cs *clients.Clients, now time.Time, args ...string) (string, string, error) {
	cmd := NewCommand(func() (*clients.Clients, error) { return cs, nil }, func() time.Time { return now })
	var stdout, stderr bytes.Buffer
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	cmd.SetArgs(append([]string{}, args...)) // never nil: cobra would read os.Args
	err := cmd.ExecuteContext(ctx)
	return stdout.String(), stderr.String(), err
}

func TestStatusOnAPIServer(t *testing.T) {
	t.Parallel() // its own control plane
	cp := controlplane.Start(t, controlplane.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs, err := clients.New(cp.Config)
	require.NoError(t, err)

	// An empty cluster says so.
	out, _, err := run(ctx, cs, time.Now())
	require.NoError(t, err)
	golden.Check(t, "empty.txt", out)

	newest := createFixture(ctx, t, cp.Client)
	now := newest.Add(3*time.Hour + 10*time.Second) // every AGE reads 3h

	out, _, err = run(ctx, cs, now)
	require.NoError(t, err)
	golden.Check(t, "status.txt", out)

	out, _, err = run(ctx, cs, now, "-o", "json")
	require.NoError(t, err)
	var st Status
	require.NoError(t, json.Unmarshal([]byte(out), &st), out)
	require.Len(t, st.Pools, 3)
	assert.Equal(t, Pool{Name: "layered-image", Config: "rendered-layered-image-" + strings.Repeat("a", 32), Updated: "False", Updating: "True",
		Degraded: "True", MachineCount: 2, ReadyMachineCount: 1, UpdatedMachineCount: 0, DegradedMachineCount: 1, Created: st.Pools[0].Created}, st.Pools[0])
	assert.False(t, st.Pools[0].Created.IsZero())
	assert.Equal(t, []LayeredPool{
		{MachineOSConfig: "infra", Pool: "infra", Build: "infra-0123", BuildState: BuildNotFound},
		{MachineOSConfig: "layered-image", Pool: "layered-image", Build: "layered-image-0123", BuildState: "Succeeded", Image: digested},
	}, st.LayeredPools)
	require.Len(t, st.Nodes, 5)
	assert.Equal(t, Node{Name: "worker-1", Pools: []string{"layered-image", "worker"}, CurrentConfig: "rendered-layered-image-" + strings.Repeat("b", 32),
		DesiredConfig: "rendered-layered-image-" + strings.Repeat("a", 32), DesiredImage: digested, State: "Working"}, st.Nodes[3])
	assert.Equal(t, []string{}, st.Nodes[1].Pools, "unmanaged-0 is in no pool")

	out, _, err = run(ctx, cs, now, "-o", "yaml")
	require.NoError(t, err)
	var fromYAML Status
	require.NoError(t, yaml.Unmarshal([]byte(out), &fromYAML))
	assert.Equal(t, st, fromYAML, "yaml and json carry the same document")

	_, _, err = run(ctx, cs, now, "-o", "wide")
	require.EqualError(t, err, `unsupported output format "wide" (allowed: json, yaml)`)
}

// lockedBuffer is written by the watch and read by the test.
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

func TestWatchReprintsOnChange(t *testing.T) {
	t.Parallel() // its own control plane
	cp := controlplane.Start(t, controlplane.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := clients.New(cp.Config)
	require.NoError(t, err)
	p, setStatus := pool("worker", "worker", [3]corev1.ConditionStatus{"True", "False", "False"}, [4]int32{1, 1, 1, 0})
	require.NoError(t, cp.Client.Create(ctx, p))
	setStatus(p)
	require.NoError(t, cp.Client.Status().Update(ctx, p))

	watchCtx, stop := context.WithCancel(ctx)
	var out lockedBuffer
	done := make(chan error, 1)
	fixed := time.Now().Add(time.Hour) // AGE must not change between prints: only the node makes a new one
	go func() { done <- Watch(watchCtx, c.Client, &out, "", func() time.Time { return fixed }, false) }()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "No nodes.") }, 20*time.Second, 50*time.Millisecond)

	require.NoError(t, cp.Client.Create(ctx, node("worker-0", []string{"worker"}, map[string]string{wellknown.StateAnnotation: "Working"})))
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "worker-0") }, 20*time.Second, 50*time.Millisecond)
	stop()
	require.NoError(t, <-done, "Ctrl-C ends the watch without an error")
	s := out.String()
	assert.Equal(t, 2, strings.Count(s, "MachineConfigPools:"), "printed once, then once more after the change:\n%s", s)
	assert.NotContains(t, s, "\x1b", "no escape codes when not on a terminal")
}
