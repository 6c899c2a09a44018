package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/imagemode/imagemode/internal/controlplane"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/render/prune"
)

// Names of the rendered configs of TestPruneRenderedMachineConfigsOnAPIServer, in creation order. Their
// hashes run against creation order, so an order by name would differ.
var (
	w2 = "rendered-worker-" + strings.Repeat("e", 32) // a MachineOSBuild builds from it
	m1 = "rendered-master-" + strings.Repeat("1", 32) // unused
	w1 = "rendered-worker-" + strings.Repeat("f", 32) // unused
	i1 = "rendered-infra-" + strings.Repeat("7", 32)  // unused, no owner: pool from its name
	m2 = "rendered-master-" + strings.Repeat("2", 32) // master pool spec and status
	w3 = "rendered-worker-" + strings.Repeat("d", 32) // worker-1's first pivot config
	w4 = "rendered-worker-" + strings.Repeat("c", 32) // unused
	w5 = "rendered-worker-" + strings.Repeat("b", 32) // worker pool status, worker-0 current, worker-1 current and desired
	w6 = "rendered-worker-" + strings.Repeat("a", 32) // worker pool spec, worker-0 desired
	w7 = "rendered-worker-" + strings.Repeat("9", 32) // worker-1's MachineConfigNode desired

	// userConfigs are never candidates; the reference would take the annotated copy.
	userConfigs = []string{"99-user", "my-pinned-worker-config"}
)

const mosbName = "layered-image-ab12cd34"

func TestPruneRenderedMachineConfigsOnAPIServer(t *testing.T) {
	cp := controlplane.Start(t, controlplane.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := cp.Client
	kubeconfig := "--kubeconfig=" + cp.KubeconfigPath

	worker := createPool(ctx, t, c, "worker", w6, w5)
	master := createPool(ctx, t, c, "master", m2, m2)
	for i, name := range []string{w2, m1, w1, i1, m2, w3, w4, w5, w6, w7} {
		if i > 0 {
			time.Sleep(1100 * time.Millisecond) // creation timestamps have one-second resolution
		}
		owner := worker
		switch {
		case strings.HasPrefix(name, "rendered-master-"):
			owner = master
		case name == i1:
			owner = nil
		}
		require.NoError(t, c.Create(ctx, renderedConfig(t, cp.Scheme, name, owner)), name)
	}
	require.NoError(t, c.Create(ctx, machineConfig("99-user", nil)))
	require.NoError(t, c.Create(ctx, machineConfig("my-pinned-worker-config", map[string]string{wellknown.GeneratedByControllerVersionAnnotation: "v1"})))
	require.NoError(t, c.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "worker-0", Annotations: map[string]string{
		wellknown.CurrentConfigAnnotation: w5, wellknown.DesiredConfigAnnotation: w6,
	}}}))
	require.NoError(t, c.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "worker-1", Annotations: map[string]string{
		wellknown.CurrentConfigAnnotation: w5, wellknown.DesiredConfigAnnotation: w5, wellknown.FirstPivotConfigAnnotation: w3,
	}}}))
	mosb := &mcfgv1.MachineOSBuild{ObjectMeta: metav1.ObjectMeta{Name: mosbName}}
	mosb.Spec.MachineConfig.Name = w2
	mosb.Spec.MachineOSConfig.Name = "layered-image"
	mosb.Spec.RenderedImagePushSpec = "registry.example.com/os/img:tag"
	require.NoError(t, c.Create(ctx, mosb))
	mcn := &mcfgv1.MachineConfigNode{ObjectMeta: metav1.ObjectMeta{Name: "worker-1"}}
	mcn.Spec.Node.Name = "worker-1"
	mcn.Spec.Pool.Name = "worker"
	mcn.Spec.ConfigVersion.Desired = w7
	require.NoError(t, c.Create(ctx, mcn))

	everything := append([]string{w2, m1, w1, i1, m2, w3, w4, w5, w6, w7}, userConfigs...)
	inUse := []string{m2, w2, w3, w5, w6, w7}

	// Dry run: grouped by pool, oldest first; deletions on stdout, notice and skips on stderr; nothing deleted.
	r := run(ctx, "prune", "renderedmachineconfigs", kubeconfig)
	require.NoError(t, r.err)
	assert.Equal(t, lines("dry-run deleting rendered MachineConfig ", i1, m1, w1, w4), r.stdout)
	assert.Equal(t, prune.DryRunNotice+"\n"+skips(true, m2, w2, w3, w5, w6, w7), r.stderr)
	assert.ElementsMatch(t, everything, configNames(ctx, t, c))

	// list: every candidate with its creation time, grouped by pool under a centred heading.
	r = run(ctx, "prune", "renderedmachineconfigs", "list", kubeconfig)
	require.NoError(t, r.err)
	var want strings.Builder
	for _, group := range []struct {
		pool  string
		names []string
	}{{"infra", []string{i1}}, {"master", []string{m1, m2}}, {"worker", []string{w2, w1, w3, w4, w5, w6, w7}}} {
		fmt.Fprintf(&want, "\n%s%s\n", strings.Repeat(" ", (80-len(group.pool))/2), group.pool)
		for _, name := range group.names {
			fmt.Fprintf(&want, "\n%s -- %s (Currently in use: %t)\n", name,
				created(ctx, t, c, name).Format("2006-01-02 15:04:05 -0700 MST"), slices.Contains(inUse, name))
		}
	}
	assert.Equal(t, want.String(), r.stdout)

	r = run(ctx, "prune", "renderedmachineconfigs", "list", "--in-use", kubeconfig)
	require.NoError(t, r.err)
	assert.Equal(t, "master\nstatus: "+m2+"\nspec: "+m2+"\nworker\nstatus: "+w5+"\nspec: "+w6+"\n", r.stdout)
	r = run(ctx, "prune", "renderedmachineconfigs", "list", "--in-use", "-p", "worker", kubeconfig)
	require.NoError(t, r.err)
	assert.Equal(t, "worker\nstatus: "+w5+"\nspec: "+w6+"\n", r.stdout)

	// -o json: each candidate's reasons, and the API server's verdict on the dry-run deletions.
	r = run(ctx, "prune", "renderedmachineconfigs", "-o", "json", kubeconfig)
	require.NoError(t, r.err)
	var report prune.PruneReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &report), r.stdout)
	assert.True(t, report.DryRun)
	items := map[string]prune.Item{}
	var order []string
	for _, it := range report.Items {
		items[it.Name] = it
		order = append(order, it.Name)
	}
	assert.Equal(t, []string{i1, m1, m2, w2, w1, w3, w4, w5, w6, w7}, order)
	assert.Equal(t, []string{"machineosbuild " + mosbName + " spec.machineConfig"}, items[w2].Reasons)
	assert.Equal(t, []string{"node worker-1 firstPivotConfig"}, items[w3].Reasons)
	assert.Equal(t, []string{"machineconfignode worker-1 spec.configVersion.desired"}, items[w7].Reasons)
	assert.Equal(t, []string{"pool worker status.configuration", "node worker-0 currentConfig", "node worker-1 currentConfig", "node worker-1 desiredConfig"}, items[w5].Reasons)
	assert.Equal(t, []string{"pool worker spec.configuration", "node worker-0 desiredConfig"}, items[w6].Reasons)
	assert.Equal(t, prune.Item{Name: i1, Pool: "infra", Created: created(ctx, t, c, i1).Format(time.RFC3339), Reasons: []string{},
		Action: prune.Delete, Result: prune.DryRunDeleted}, items[i1])
	assert.Equal(t, prune.Skip, items[m2].Action)
	assert.True(t, items[m2].InUse)
	assert.Empty(t, items[m2].Result)
	assert.ElementsMatch(t, everything, configNames(ctx, t, c))

	// --count 1: oldest first across pools; the in-use oldest is skipped and does not use up the count.
	r = run(ctx, "prune", "renderedmachineconfigs", "--count", "1", "--confirm", kubeconfig)
	require.NoError(t, r.err)
	assert.Equal(t, lines("deleting rendered MachineConfig ", m1), r.stdout)
	assert.Equal(t, skips(false, w2), r.stderr)
	assert.NotContains(t, configNames(ctx, t, c), m1)

	// --pool-name: that pool's only, oldest first.
	r = run(ctx, "prune", "renderedmachineconfigs", "--pool-name", "worker", "--count=1", "--confirm", kubeconfig)
	require.NoError(t, r.err)
	assert.Equal(t, lines("deleting rendered MachineConfig ", w1), r.stdout)
	assert.Equal(t, skips(false, w2), r.stderr)

	// --confirm, with the kubeconfig from $KUBECONFIG: exactly the unused ones go.
	t.Setenv("KUBECONFIG", cp.KubeconfigPath)
	r = run(ctx, "prune", "renderedmachineconfigs", "--confirm")
	require.NoError(t, r.err)
	assert.Equal(t, lines("deleting rendered MachineConfig ", i1, w4), r.stdout)
	assert.Equal(t, skips(false, m2, w2, w3, w5, w6, w7), r.stderr)
	assert.ElementsMatch(t, append(inUse, userConfigs...), configNames(ctx, t, c))

	// Nothing left to delete: only skips, success.
	r = run(ctx, "prune", "renderedmachineconfigs", "--confirm")
	require.NoError(t, r.err)
	assert.Empty(t, r.stdout)
	assert.Equal(t, skips(false, m2, w2, w3, w5, w6, w7), r.stderr)

	// Errors name what is wrong and fail the command.
	r = run(ctx, "prune", "renderedmachineconfigs", "--pool-name", "nope", "--confirm")
	require.EqualError(t, r.err, "MachineConfigPool with name 'nope' not found")
	assert.Contains(t, r.stderr, "Error: MachineConfigPool with name 'nope' not found")
	r = run(ctx, "prune", "renderedmachineconfigs", "--kubeconfig", cp.WorkDir+"/missing.kubeconfig")
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "loading kubeconfig")
	assert.ElementsMatch(t, append(inUse, userConfigs...), configNames(ctx, t, c))
}

type result struct {
	stdout, stderr string
	err            error
}

// run runs the imagemode command line in-process, as the binary would.
func run(ctx context.Context, args ...string) result {
	root := newRootCommand()
	var stdout, stderr bytes.Buffer
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return result{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

func lines(prefix string, names ...string) string {
	var b strings.Builder
	for _, n := range names {
		b.WriteString(prefix + n + "\n")
	}
	return b.String()
}

func skips(dryRun bool, names ...string) string {
	verb := "deleting"
	if dryRun {
		verb = "dry-run deleting"
	}
	var b strings.Builder
	for _, n := range names {
		b.WriteString("Skip " + verb + " rendered MachineConfig " + n + " as it's currently in use\n")
	}
	return b.String()
}

func createPool(ctx context.Context, t *testing.T, c client.Client, name, spec, status string) *mcfgv1.MachineConfigPool {
	t.Helper()
	p := &mcfgv1.MachineConfigPool{ObjectMeta: metav1.ObjectMeta{Name: name}}
	p.Spec.MachineConfigSelector = &metav1.LabelSelector{MatchLabels: map[string]string{wellknown.RoleLabel: name}}
	p.Spec.Configuration.Name = spec
	require.NoError(t, c.Create(ctx, p))
	p.Status.Configuration.Name = status
	require.NoError(t, c.Status().Update(ctx, p))
	return p
}

func machineConfig(name string, annotations map[string]string) *mcfgv1.MachineConfig {
	mc := &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}}
	mc.Spec.Config = runtime.RawExtension{Raw: []byte(`{"ignition":{"version":"3.2.0"}}`)}
	return mc
}

// renderedConfig is a rendered config as the render controller writes it, controlled by owner (nil: none).
func renderedConfig(t *testing.T, scheme *runtime.Scheme, name string, owner *mcfgv1.MachineConfigPool) *mcfgv1.MachineConfig {
	t.Helper()
	mc := machineConfig(name, map[string]string{wellknown.GeneratedByControllerVersionAnnotation: "test-v1"})
	if owner != nil {
		require.NoError(t, controllerutil.SetControllerReference(owner, mc, scheme))
	}
	return mc
}

func configNames(ctx context.Context, t *testing.T, c client.Client) []string {
	t.Helper()
	var list mcfgv1.MachineConfigList
	require.NoError(t, c.List(ctx, &list))
	var names []string
	for _, mc := range list.Items {
		names = append(names, mc.Name)
	}
	return names
}

func created(ctx context.Context, t *testing.T, c client.Client, name string) time.Time {
	t.Helper()
	mc := &mcfgv1.MachineConfig{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Name: name}, mc))
	return mc.CreationTimestamp.UTC()
}
