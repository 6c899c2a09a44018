package prune

import (
	"errors"
	"strings"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/imagemode/imagemode/internal/wellknown"
)

var t0 = time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)

// hash is a 32-hex-digit rendered hash made of one repeated digit.
func hash(d string) string { return strings.Repeat(d, 32) }

// at returns t0 plus s seconds.
func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

// rendered is a rendered config as the render controller writes it: controlled by its pool, annotated.
func rendered(pool, h string, created time.Time) mcfgv1.MachineConfig {
	mc := orphan(wellknown.RenderedPrefix+pool+"-"+h, created)
	mc.OwnerReferences = []metav1.OwnerReference{poolOwner(pool, true)}
	return mc
}

// orphan is an annotated config without owner.
func orphan(name string, created time.Time) mcfgv1.MachineConfig {
	return mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{
		Name:              name,
		UID:               types.UID("uid-" + name),
		CreationTimestamp: metav1.NewTime(created),
		Annotations:       map[string]string{wellknown.GeneratedByControllerVersionAnnotation: "v1"},
	}}
}

func poolOwner(name string, controller bool) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "machineconfiguration.openshift.io/v1", Kind: "MachineConfigPool", Name: name, UID: "pool-uid", Controller: ptr.To(controller)}
}

func user(name string, created time.Time) mcfgv1.MachineConfig {
	return mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(created),
		Labels: map[string]string{wellknown.RoleLabel: "worker"}}}
}

func pool(name, spec, status string) mcfgv1.MachineConfigPool {
	p := mcfgv1.MachineConfigPool{ObjectMeta: metav1.ObjectMeta{Name: name}}
	p.Spec.Configuration.Name = spec
	p.Status.Configuration.Name = status
	return p
}

func node(name string, annotations map[string]string) corev1.Node {
	return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}}
}

func build(name, config string) mcfgv1.MachineOSBuild {
	b := mcfgv1.MachineOSBuild{ObjectMeta: metav1.ObjectMeta{Name: name}}
	b.Spec.MachineConfig.Name = config
	return b
}

func configNode(name, desired string) mcfgv1.MachineConfigNode {
	m := mcfgv1.MachineConfigNode{ObjectMeta: metav1.ObjectMeta{Name: name}}
	m.Spec.ConfigVersion.Desired = desired
	return m
}

func TestRenderedPool(t *testing.T) {
	t.Parallel()
	withOwners := func(mc mcfgv1.MachineConfig, owners ...metav1.OwnerReference) mcfgv1.MachineConfig {
		mc.OwnerReferences = owners
		return mc
	}
	noAnnotation := func(mc mcfgv1.MachineConfig) mcfgv1.MachineConfig {
		mc.Annotations = nil
		return mc
	}
	tests := []struct {
		name     string
		mc       mcfgv1.MachineConfig
		wantPool string
		wantOK   bool
	}{
		{name: "controlled by its pool", mc: rendered("worker", hash("a"), t0), wantPool: "worker", wantOK: true},
		{name: "pool from the owner, not the name", mc: withOwners(orphan("rendered-worker-"+hash("a"), t0), poolOwner("infra", true)), wantPool: "infra", wantOK: true},
		{name: "controlled by its pool without the annotation", mc: noAnnotation(rendered("worker", hash("a"), t0)), wantPool: "worker", wantOK: true},
		{name: "pool name with dashes from the name", mc: orphan("rendered-layered-image-"+hash("b"), t0), wantPool: "layered-image", wantOK: true},
		{name: "unowned rendered name without hash", mc: orphan("rendered-something", t0), wantPool: UnknownPool, wantOK: true},
		{name: "unowned rendered name with a short hash", mc: orphan("rendered-worker-abc", t0), wantPool: UnknownPool, wantOK: true},
		{name: "pool owner that is not the controller", mc: withOwners(orphan("rendered-worker-"+hash("a"), t0), poolOwner("worker", false))},
		{name: "controlled by something else", mc: withOwners(orphan("rendered-worker-"+hash("a"), t0),
			metav1.OwnerReference{APIVersion: "machineconfiguration.openshift.io/v1", Kind: "KubeletConfig", Name: "k", Controller: ptr.To(true)})},
		{name: "controlled by a MachineConfigPool of another group", mc: withOwners(orphan("rendered-worker-"+hash("a"), t0),
			metav1.OwnerReference{APIVersion: "example.com/v1", Kind: "MachineConfigPool", Name: "worker", Controller: ptr.To(true)})},
		{name: "unowned rendered name without the annotation", mc: noAnnotation(orphan("rendered-worker-"+hash("a"), t0))},
		{name: "user config", mc: user("99-worker-ssh", t0)},
		{name: "annotated user config starting with a digit", mc: orphan("99-worker-generated-registries", t0)},
		{name: "annotated copy of a rendered config under another name", mc: orphan("my-pinned-worker-config", t0)},
		{name: "annotated config with rendered in the middle", mc: orphan("not-rendered-worker-"+hash("a"), t0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := RenderedPool(&tt.mc)
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.wantPool, got)
		})
	}
}

func TestInUse(t *testing.T) {
	t.Parallel()
	const a, b = "rendered-worker-a", "rendered-worker-b"
	tests := []struct {
		name string
		inv  Inventory
		want map[string][]string
	}{
		{name: "nothing references anything", inv: Inventory{Pools: []mcfgv1.MachineConfigPool{pool("worker", "", "")}, Nodes: []corev1.Node{node("n", nil)}},
			want: map[string][]string{}},
		{name: "pool spec", inv: Inventory{Pools: []mcfgv1.MachineConfigPool{pool("worker", a, "")}},
			want: map[string][]string{a: {"pool worker spec.configuration"}}},
		{name: "pool status", inv: Inventory{Pools: []mcfgv1.MachineConfigPool{pool("worker", "", a)}},
			want: map[string][]string{a: {"pool worker status.configuration"}}},
		{name: "pool spec and status, pools by name", inv: Inventory{Pools: []mcfgv1.MachineConfigPool{pool("worker", b, a), pool("infra", a, a)}},
			want: map[string][]string{
				a: {"pool infra spec.configuration", "pool infra status.configuration", "pool worker status.configuration"},
				b: {"pool worker spec.configuration"},
			}},
		{name: "node current config", inv: Inventory{Nodes: []corev1.Node{node("worker-0", map[string]string{wellknown.CurrentConfigAnnotation: a})}},
			want: map[string][]string{a: {"node worker-0 currentConfig"}}},
		{name: "node desired config", inv: Inventory{Nodes: []corev1.Node{node("worker-0", map[string]string{wellknown.DesiredConfigAnnotation: a})}},
			want: map[string][]string{a: {"node worker-0 desiredConfig"}}},
		{name: "node first pivot config", inv: Inventory{Nodes: []corev1.Node{node("worker-0", map[string]string{wellknown.FirstPivotConfigAnnotation: a})}},
			want: map[string][]string{a: {"node worker-0 firstPivotConfig"}}},
		{name: "every node counts, whatever its pool, nodes by name", inv: Inventory{Nodes: []corev1.Node{
			node("worker-1", map[string]string{wellknown.CurrentConfigAnnotation: a, wellknown.DesiredConfigAnnotation: b}),
			node("master-0", map[string]string{wellknown.CurrentConfigAnnotation: a, wellknown.DesiredConfigAnnotation: a, wellknown.FirstPivotConfigAnnotation: a}),
		}},
			want: map[string][]string{
				a: {"node master-0 currentConfig", "node master-0 desiredConfig", "node master-0 firstPivotConfig", "node worker-1 currentConfig"},
				b: {"node worker-1 desiredConfig"},
			}},
		{name: "other node annotations do not count", inv: Inventory{Nodes: []corev1.Node{node("worker-0", map[string]string{wellknown.StateAnnotation: a, wellknown.ReasonAnnotation: a})}},
			want: map[string][]string{}},
		{name: "machineosbuild", inv: Inventory{MachineOSBuilds: []mcfgv1.MachineOSBuild{build("layered-image-ab12", a)}},
			want: map[string][]string{a: {"machineosbuild layered-image-ab12 spec.machineConfig"}}},
		{name: "machineconfignode", inv: Inventory{MachineConfigNodes: []mcfgv1.MachineConfigNode{configNode("worker-0", b)}},
			want: map[string][]string{b: {"machineconfignode worker-0 spec.configVersion.desired"}}},
		{name: "all sources in source order", inv: Inventory{
			MachineConfigNodes: []mcfgv1.MachineConfigNode{configNode("worker-0", a)},
			MachineOSBuilds:    []mcfgv1.MachineOSBuild{build("mosb", a)},
			Nodes:              []corev1.Node{node("worker-0", map[string]string{wellknown.CurrentConfigAnnotation: a})},
			Pools:              []mcfgv1.MachineConfigPool{pool("worker", a, "")},
		},
			want: map[string][]string{a: {"pool worker spec.configuration", "node worker-0 currentConfig", "machineosbuild mosb spec.machineConfig",
				"machineconfignode worker-0 spec.configVersion.desired"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, InUse(tt.inv))
		})
	}
}

// fixture is a cluster with two pools, an orphan and user configs. In creation order:
//
//	w1 (unused), m1 (unused), w2 (MachineOSBuild), o1 (orphan, unused), w3 (unused), m2 (master pool),
//	w4 (worker status, node current), w6 (unused), w5 (worker spec, node desired)
//
// The hashes run against creation order so that sorting by name would give another order.
func fixture() Inventory {
	return Inventory{
		Configs: []mcfgv1.MachineConfig{
			rendered("worker", hash("9"), at(0)), // w1
			rendered("master", hash("9"), at(1)), // m1
			rendered("worker", hash("8"), at(2)), // w2
			orphan("rendered-infra-"+hash("7"), at(3)),
			rendered("worker", hash("6"), at(4)), // w3
			rendered("master", hash("5"), at(5)), // m2
			rendered("worker", hash("4"), at(6)), // w4
			rendered("worker", hash("3"), at(7)), // w5
			rendered("worker", hash("2"), at(7)), // w6: same second as w5, so before it by name
			user("00-worker", at(0)),
			orphan("my-pinned-worker-config", at(0)),
		},
		Pools: []mcfgv1.MachineConfigPool{
			pool("worker", "rendered-worker-"+hash("3"), "rendered-worker-"+hash("4")),
			pool("master", "rendered-master-"+hash("5"), "rendered-master-"+hash("5")),
		},
		Nodes: []corev1.Node{node("worker-0", map[string]string{
			wellknown.CurrentConfigAnnotation: "rendered-worker-" + hash("4"),
			wellknown.DesiredConfigAnnotation: "rendered-worker-" + hash("3"),
		})},
		MachineOSBuilds: []mcfgv1.MachineOSBuild{build("layered-image-ab12", "rendered-worker-"+hash("8"))},
	}
}

// names of the fixture's configs, by their short name.
var names = map[string]string{
	"w1": "rendered-worker-" + hash("9"), "m1": "rendered-master-" + hash("9"), "w2": "rendered-worker-" + hash("8"),
	"o1": "rendered-infra-" + hash("7"), "w3": "rendered-worker-" + hash("6"), "m2": "rendered-master-" + hash("5"),
	"w4": "rendered-worker-" + hash("4"), "w5": "rendered-worker-" + hash("3"), "w6": "rendered-worker-" + hash("2"),
}

// steps writes a plan as "verdict:short-name" for compact expectations.
func steps(p Plan) []string {
	short := map[string]string{}
	for k, v := range names {
		short[v] = k
	}
	var out []string
	for _, a := range p.Actions {
		out = append(out, string(a.Verdict)+":"+short[a.Name])
	}
	return out
}

func TestNewPlan(t *testing.T) {
	t.Parallel()
	withInfraPool := fixture()
	withInfraPool.Pools = append(withInfraPool.Pools, pool("infra", "", ""))
	tests := []struct {
		name    string
		inv     Inventory
		opts    Options
		want    []string
		wantErr string
	}{
		{name: "all pools, no count: grouped by pool, oldest first",
			inv:  fixture(),
			want: []string{"delete:o1", "delete:m1", "skip:m2", "delete:w1", "skip:w2", "delete:w3", "skip:w4", "delete:w6", "skip:w5"}},
		{name: "count: oldest first across pools, skips do not use up the count",
			inv: fixture(), opts: Options{Count: 3},
			want: []string{"delete:w1", "delete:m1", "skip:w2", "delete:o1", "keep:w3", "keep:m2", "keep:w4", "keep:w6", "keep:w5"}},
		{name: "pool and count: a skip in between",
			inv: fixture(), opts: Options{PoolName: "worker", Count: 2},
			want: []string{"delete:w1", "skip:w2", "delete:w3", "keep:w4", "keep:w6", "keep:w5"}},
		{name: "pool filter: that pool only, oldest first",
			inv: fixture(), opts: Options{PoolName: "worker"},
			want: []string{"delete:w1", "skip:w2", "delete:w3", "skip:w4", "delete:w6", "skip:w5"}},
		{name: "count larger than the candidates",
			inv: fixture(), opts: Options{PoolName: "master", Count: 10},
			want: []string{"delete:m1", "skip:m2"}},
		{name: "pool filter on a pool with only an orphan by name",
			inv: withInfraPool, opts: Options{PoolName: "infra"},
			want: []string{"delete:o1"}},
		{name: "no candidates",
			inv: Inventory{Configs: []mcfgv1.MachineConfig{user("00-worker", t0)}}},
		{name: "unknown pool", inv: fixture(), opts: Options{PoolName: "infra"}, wantErr: "MachineConfigPool with name 'infra' not found"},
		{name: "negative count", inv: fixture(), opts: Options{Count: -1}, wantErr: "count cannot be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPlan(tt.inv, tt.opts)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, steps(p))
			for _, a := range p.Actions {
				assert.NotContains(t, []string{"00-worker", "my-pinned-worker-config"}, a.Name, "user configs are never candidates")
				if a.Verdict == Delete {
					assert.Empty(t, a.Reasons, "a deleted config is in use: %s", a.Name)
				}
			}
		})
	}
}

func TestNewPlanErrors(t *testing.T) {
	t.Parallel()
	_, err := NewPlan(fixture(), Options{PoolName: "nope"})
	var notFound *PoolNotFoundError
	require.True(t, errors.As(err, &notFound))
	assert.Equal(t, "nope", notFound.Name)
	_, err = NewPlan(fixture(), Options{Count: -3})
	assert.ErrorIs(t, err, ErrNegativeCount)
}

func TestDeletions(t *testing.T) {
	t.Parallel()
	p, err := NewPlan(fixture(), Options{PoolName: "worker"})
	require.NoError(t, err)
	var got []string
	for _, a := range p.Deletions() {
		got = append(got, a.Name)
	}
	assert.Equal(t, []string{names["w1"], names["w3"], names["w6"]}, got)
}

func TestCandidates(t *testing.T) {
	t.Parallel()
	cands := Candidates(fixture())
	require.Len(t, cands, 9, "the user configs are not candidates")
	byName := map[string]Candidate{}
	for _, c := range cands {
		byName[c.Name] = c
	}
	w2 := byName[names["w2"]]
	assert.Equal(t, "worker", w2.Pool)
	assert.Equal(t, at(2), w2.Created)
	assert.Equal(t, []string{"machineosbuild layered-image-ab12 spec.machineConfig"}, w2.Reasons)
	assert.True(t, w2.InUse())
	assert.Equal(t, "infra", byName[names["o1"]].Pool)
	assert.False(t, byName[names["o1"]].InUse())
	assert.Equal(t, []string{"pool worker spec.configuration", "node worker-0 desiredConfig"}, byName[names["w5"]].Reasons)
}

func TestList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		poolName string
		want     []string
		wantErr  string
	}{
		{name: "all pools: grouped by pool, oldest first", want: []string{"o1", "m1", "m2", "w1", "w2", "w3", "w4", "w6", "w5"}},
		{name: "one pool", poolName: "master", want: []string{"m1", "m2"}},
		{name: "unknown pool", poolName: "nope", wantErr: "MachineConfigPool with name 'nope' not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cands, err := List(fixture(), tt.poolName)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			var got []string
			for _, c := range cands {
				got = append(got, c.Name)
			}
			var want []string
			for _, s := range tt.want {
				want = append(want, names[s])
			}
			assert.Equal(t, want, got)
		})
	}
}

func TestPoolConfigs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		poolName string
		want     []PoolConfig
		wantErr  string
	}{
		{name: "all pools by name", want: []PoolConfig{
			{Pool: "master", Status: names["m2"], Spec: names["m2"]},
			{Pool: "worker", Status: names["w4"], Spec: names["w5"]},
		}},
		{name: "one pool", poolName: "worker", want: []PoolConfig{{Pool: "worker", Status: names["w4"], Spec: names["w5"]}}},
		{name: "unknown pool", poolName: "nope", wantErr: "MachineConfigPool with name 'nope' not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PoolConfigs(fixture(), tt.poolName)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
