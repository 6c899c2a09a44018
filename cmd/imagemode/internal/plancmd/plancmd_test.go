package plancmd

import (
	"github.com/imagemode/imagemode/internal/golden"

	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// run runs `plan` with args; live mode is not available (offline tests only).
func run(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := NewCommand(func() (client.Reader, error) { return nil, errors.New("no cluster in offline tests") })
	var stdout bytes.Buffer
	cmd.SetOut(&stdout)
	cmd.SetErr(&bytes.Buffer{})
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	cmd.SetArgs(append([]string{}, args...))
	err := cmd.Execute()
	return stdout.String(), err
}

// planOf plans a change file against the snapshot, as a value to assert on.
func planOf(t *testing.T, file string, del bool) *Plan {
	t.Helper()
	args := []string{"-f", filepath.Join("testdata/changes", file), "--offline", clusterDir, "-o", "json"}
	if del {
		args = append(args, "--delete")
	}
	out, err := run(t, "", args...)
	require.NoError(t, err)
	var p Plan
	require.NoError(t, json.Unmarshal([]byte(out), &p), out)
	return &p
}

func poolOf(t *testing.T, p *Plan, name string) PoolPlan {
	t.Helper()
	for _, pp := range p.Pools {
		if pp.Pool == name {
			return pp
		}
	}
	t.Fatalf("pool %s not in the plan: %+v", name, p.Pools)
	return PoolPlan{}
}

func nodeOf(t *testing.T, pp PoolPlan, name string) NodePlan {
	t.Helper()
	for _, n := range pp.Nodes {
		if n.Node == name {
			return n
		}
	}
	t.Fatalf("node %s not in pool %s: %+v", name, pp.Pool, pp.Nodes)
	return NodePlan{}
}

func poolNames(p *Plan) []string {
	var names []string
	for _, pp := range p.Pools {
		names = append(names, pp.Pool)
	}
	return names
}

// TestPlanOfflineGolden prints each change's plan as a user sees it.
func TestPlanOfflineGolden(t *testing.T) {
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"nmstate.golden", []string{"-f", "testdata/changes/nmstate.yaml"}},
		{"kargs.golden", []string{"-f", "testdata/changes/kargs.yaml"}},
		{"idms.golden", []string{"-f", "testdata/changes/idms.yaml"}},
		{"icsp-remove-mirror.golden", []string{"-f", "testdata/changes/icsp-remove-mirror.yaml"}},
		{"mosc.golden", []string{"-f", "testdata/changes/mosc.yaml"}},
		{"layered-file.golden", []string{"-f", "testdata/changes/layered-file.yaml"}},
		{"layered-realtime.golden", []string{"-f", "testdata/changes/layered-realtime.yaml"}},
		{"delete-icsp.golden", []string{"--delete", "-f", "testdata/changes/icsp-remove-mirror.yaml"}},
		{"kargs-all.golden", []string{"--all", "-f", "testdata/changes/kargs.yaml"}},
		{"kargs.yaml.golden", []string{"-f", "testdata/changes/kargs.yaml", "-o", "yaml"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			out, err := run(t, "", append(tc.args, "--offline", clusterDir)...)
			require.NoError(t, err)
			golden.Check(t, tc.golden, out)
		})
	}
}

// TestPlanOutcomes checks what the plans say, beyond their printing.
func TestPlanOutcomes(t *testing.T) {
	t.Run("files under a None policy: no reboot, a new rendered config", func(t *testing.T) {
		p := planOf(t, "nmstate.yaml", false)
		assert.Equal(t, []string{"layered-image", "worker"}, poolNames(p), "master does not select worker configs")
		w := poolOf(t, p, "worker")
		assert.True(t, w.ConfigChanged)
		assert.NotEqual(t, w.CurrentConfig, w.NewConfig)
		assert.True(t, strings.HasPrefix(w.NewConfig, "rendered-worker-"), w.NewConfig)
		for _, n := range []string{"worker-0", "worker-1"} {
			assert.Equal(t, NodePlan{Node: n, CurrentConfig: w.CurrentConfig, Actions: []string{"None"}}, nodeOf(t, w, n))
		}
		assert.Equal(t, UnknownCurrentConfig, nodeOf(t, w, "worker-2").Error, "a node without a current config")
		l := poolOf(t, p, "layered-image")
		assert.Equal(t, LayeringReused, l.Layering.State)
		assert.Equal(t, layeredImage, l.Layering.Image)
		assert.Equal(t, []string{"None"}, nodeOf(t, l, "layered-0").Actions)
		require.Len(t, p.RenderedConfigs, 2, "offline plans carry the new rendered configs")
		assert.Equal(t, w.NewConfig, p.RenderedConfigs[1].Name)
		assert.Contains(t, string(p.RenderedConfigs[1].Spec.Config.Raw), "/etc/nmstate/openshift/worker.yml")
	})
	t.Run("kernel arguments: reboot and drain", func(t *testing.T) {
		p := planOf(t, "kargs.yaml", false)
		assert.Equal(t, []string{"master"}, poolNames(p))
		n := nodeOf(t, poolOf(t, p, "master"), "master-0")
		assert.Equal(t, []string{"Reboot"}, n.Actions)
		assert.True(t, n.Drain)
	})
	t.Run("a digest-only mirror added: crio reloads, no drain", func(t *testing.T) {
		p := planOf(t, "idms.yaml", false)
		assert.Equal(t, []string{"layered-image", "master", "worker"}, poolNames(p))
		for _, pool := range []string{"master", "worker", "layered-image"} {
			for _, n := range poolOf(t, p, pool).Nodes {
				if n.Error == "" {
					assert.Equal(t, []string{"Reload crio.service"}, n.Actions, n.Node)
					assert.False(t, n.Drain, n.Node)
				}
			}
		}
	})
	t.Run("a mirror removed: drain, then crio reloads", func(t *testing.T) {
		for _, tc := range []struct {
			file string
			del  bool
		}{{"icsp-remove-mirror.yaml", false}, {"icsp-remove-mirror.yaml", true}} {
			p := planOf(t, tc.file, tc.del)
			n := nodeOf(t, poolOf(t, p, "worker"), "worker-0")
			assert.Equal(t, []string{"Drain", "Reload crio.service"}, n.Actions, "delete=%t", tc.del)
			assert.True(t, n.Drain)
		}
	})
	t.Run("MachineOSConfig spec change: rebuild, reboot", func(t *testing.T) {
		p := planOf(t, "mosc.yaml", false)
		l := poolOf(t, p, "layered-image")
		assert.False(t, l.ConfigChanged)
		assert.Equal(t, LayeringRebuild, l.Layering.State)
		assert.Equal(t, "MachineOSConfig spec changed", l.Layering.Reason)
		assert.Equal(t, []string{"Reboot"}, nodeOf(t, l, "layered-0").Actions)
	})
	t.Run("file-only change to a layered pool: image reused", func(t *testing.T) {
		l := poolOf(t, planOf(t, "layered-file.yaml", false), "layered-image")
		assert.Equal(t, LayeringReused, l.Layering.State)
		assert.Equal(t, []string{"Reboot"}, nodeOf(t, l, "layered-0").Actions, "/etc/motd has no policy")
	})
	t.Run("kernel type change to a layered pool: rebuild", func(t *testing.T) {
		l := poolOf(t, planOf(t, "layered-realtime.yaml", false), "layered-image")
		assert.Equal(t, LayeringRebuild, l.Layering.State)
		assert.Equal(t, "kernelType changed", l.Layering.Reason)
	})
	t.Run("the MachineOSConfig removed: back to the base image", func(t *testing.T) {
		l := poolOf(t, planOf(t, "mosc.yaml", true), "layered-image")
		assert.Equal(t, LayeringNone, l.Layering.State)
		assert.Contains(t, l.Layering.Reason, "removed")
		assert.Equal(t, []string{"Reboot"}, nodeOf(t, l, "layered-0").Actions)
	})
}

// TestPlanFromStdinEqualsFile: -f - reads standard input.
func TestPlanFromStdinEqualsFile(t *testing.T) {
	raw, err := os.ReadFile("testdata/changes/kargs.yaml")
	require.NoError(t, err)
	fromFile, err := run(t, "", "-f", "testdata/changes/kargs.yaml", "--offline", clusterDir, "-o", "json")
	require.NoError(t, err)
	fromStdin, err := run(t, string(raw), "-f", "-", "--offline", clusterDir, "-o", "json")
	require.NoError(t, err)
	assert.Equal(t, fromFile, fromStdin)
	var p Plan
	require.NoError(t, yaml.Unmarshal([]byte(fromStdin), &p))
}

// TestPlanBadInput: errors name the document, its kind and name, and the field.
func TestPlanBadInput(t *testing.T) {
	var b strings.Builder
	for _, tc := range [][]string{
		{"-f", "testdata/changes/bad-setuid.yaml"},
		{"-f", "testdata/changes/bad-field.yaml"},
		{"-f", "testdata/changes/bad-kind.yaml"},
		{"-f", "testdata/changes/bad-idms.yaml"},
		{"--delete", "-f", "testdata/changes/idms.yaml"},
		{"-f", "testdata/changes/missing.yaml"},
		{},
		{"-f", "testdata/changes/kargs.yaml", "-o", "wide"},
	} {
		out, err := run(t, "", append(tc, "--offline", clusterDir)...)
		require.Error(t, err, "%v", tc)
		assert.Empty(t, out)
		b.WriteString("$ imagemode plan " + strings.Join(tc, " ") + "\n" + err.Error() + "\n")
	}
	for _, tc := range []struct{ stdin, want string }{
		{"kind: MachineConfig\nmetadata: {name: x}\n", "document 1 (MachineConfig/x) of -: apiVersion: Required value"},
		{"apiVersion: v1\nkind: List\nitems:\n- apiVersion: machineconfiguration.openshift.io/v1\n  kind: MachineConfig\n  metadata: {name: ok, labels: {machineconfiguration.openshift.io/role: worker}}\n- apiVersion: machineconfiguration.openshift.io/v1\n  kind: MachineConfig\n  metadata: {labels: {a: b}}\n",
			"document 2 (MachineConfig/) of -: metadata.name: Required value"},
		{"# nothing\n---\n", "- holds no objects"},
	} {
		_, err := run(t, tc.stdin, "-f", "-", "--offline", clusterDir)
		require.EqualError(t, err, tc.want)
	}
	golden.Check(t, "bad-input.golden", b.String())
}
