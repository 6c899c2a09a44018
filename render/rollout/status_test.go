package rollout

import (
	"fmt"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos/osbuild"
	"github.com/imagemode/imagemode/render/poolstatus"
)

// columns is what `oc get mcp` shows of a pool (besides NAME, CONFIG and AGE).
type columns struct {
	Updated, Updating, Degraded                  corev1.ConditionStatus
	Machines, Ready, UpdatedCount, DegradedCount int32
}

func (c columns) String() string {
	return fmt.Sprintf("%s %s %s %d %d %d %d", c.Updated, c.Updating, c.Degraded, c.Machines, c.Ready, c.UpdatedCount, c.DegradedCount)
}

func columnsOf(st mcfgv1.MachineConfigPoolStatus) string {
	get := func(t mcfgv1.MachineConfigPoolConditionType) corev1.ConditionStatus {
		if c := poolstatus.FindCondition(&st, t); c != nil {
			return c.Status
		}
		return ""
	}
	return columns{get(mcfgv1.MachineConfigPoolUpdated), get(mcfgv1.MachineConfigPoolUpdating), get(mcfgv1.MachineConfigPoolDegraded),
		st.MachineCount, st.ReadyMachineCount, st.UpdatedMachineCount, st.DegradedMachineCount}.String()
}

func message(st mcfgv1.MachineConfigPoolStatus, t mcfgv1.MachineConfigPoolConditionType) string {
	if c := poolstatus.FindCondition(&st, t); c != nil {
		return c.Message
	}
	return "<missing>"
}

func withPoolCondition(p *mcfgv1.MachineConfigPool, t mcfgv1.MachineConfigPoolConditionType, s corev1.ConditionStatus) *mcfgv1.MachineConfigPool {
	poolstatus.SetCondition(&p.Status, mcfgv1.MachineConfigPoolCondition{Type: t, Status: s}, metav1.NewTime(t0))
	return p
}

func TestCalculateStatus(t *testing.T) {
	const old, cur, img1, img2 = "rendered-worker-old", "rendered-worker-new", "quay.io/x/os@sha256:1", "quay.io/x/os@sha256:2"
	working := withConfigs(old, cur, wellknown.NodeStateWorking)
	building := func(m *mcfgv1.MachineOSConfig, state osbuild.State) *Layering {
		return &Layering{Config: m, Build: mosb("layered-abc", m.Name, cur, state, "")}
	}
	tests := []struct {
		name        string
		pool        *mcfgv1.MachineConfigPool
		nodes       []*corev1.Node
		layering    *Layering
		want        string // the `oc get mcp` columns
		wantUpdated string // Updated message
		wantMsg     string // Updating message
		wantDegMsg  string // Degraded message
		wantConfig  string // status.configuration.name afterwards
	}{
		{
			name: "all updated", pool: workerPool(cur),
			nodes:       []*corev1.Node{testNode("a", on(cur)), testNode("b", on(cur)), testNode("c", on(cur))},
			want:        "True False False 3 3 3 0",
			wantUpdated: "All nodes are updated with MachineConfig " + cur, wantMsg: "", wantConfig: cur,
		},
		{
			name: "docs: one of three nodes updating", pool: workerPool(cur),
			nodes:   []*corev1.Node{testNode("a", on(cur)), testNode("b", on(cur)), testNode("c", working)},
			want:    "False True False 3 2 2 0",
			wantMsg: "All nodes are updating to MachineConfig " + cur, wantConfig: old,
		},
		{
			name: "docs: a cordoned node is updated but not ready", pool: workerPool(cur),
			nodes:   []*corev1.Node{testNode("a", on(cur)), testNode("b", on(cur)), testNode("c", on(cur), cordoned())},
			want:    "False True False 3 2 3 0",
			wantMsg: "All nodes are updating to MachineConfig " + cur, wantConfig: old,
		},
		{
			name: "docs: one node degraded", pool: workerPool(cur),
			nodes: []*corev1.Node{
				testNode("a", on(cur)),
				testNode("b", withConfigs(old, cur, wellknown.NodeStateDegraded), withAnnotation(wellknown.ReasonAnnotation, "content mismatch for file \"/etc/foo\"")),
			},
			want:       "False True True 2 1 1 1",
			wantMsg:    "All nodes are updating to MachineConfig " + cur,
			wantDegMsg: `Node b is reporting: "content mismatch for file \"/etc/foo\""`, wantConfig: old,
		},
		{
			name: "paused, new config rendered, nodes on the old one", pool: paused(workerPool(cur)),
			nodes:   []*corev1.Node{testNode("a", on(old)), testNode("b", on(old))},
			want:    "False False False 2 0 0 0",
			wantMsg: "Pool is paused; will not update to MachineConfig " + cur, wantConfig: old,
		},
		{
			name: "paused but every node already updated", pool: paused(workerPool(cur)),
			nodes: []*corev1.Node{testNode("a", on(cur))}, want: "True False False 1 1 1 0",
			wantUpdated: "All nodes are updated with MachineConfig " + cur, wantConfig: cur,
		},
		{
			name: "empty pool is updated", pool: workerPool(cur), want: "True False False 0 0 0 0",
			wantUpdated: "All nodes are updated with MachineConfig " + cur, wantConfig: cur,
		},
		{
			name: "render degraded", pool: withPoolCondition(workerPool(cur), mcfgv1.MachineConfigPoolRenderDegraded, corev1.ConditionTrue),
			nodes: []*corev1.Node{testNode("a", on(cur))}, want: "True False True 1 1 1 0",
			wantUpdated: "All nodes are updated with MachineConfig " + cur, wantConfig: cur,
		},
		{
			name: "docs: layered, image rebuilding (pool not paused)", pool: workerPool(cur),
			nodes:    []*corev1.Node{testNode("a", on(cur), withImages(img1, img1)), testNode("b", on(cur), withImages(img1, img1))},
			layering: building(mosc("layered-image", "worker", img1), osbuild.StateBuilding),
			want:     "False True False 2 2 2 0",
			wantMsg:  "Pool is waiting for OS image build to complete (mosb: layered-abc)", wantConfig: old,
		},
		{
			name: "docs: layered, image rebuilding, pool paused", pool: paused(workerPool(cur)),
			nodes:    []*corev1.Node{testNode("a", on(cur), withImages(img1, img1)), testNode("b", on(cur), withImages(img1, img1))},
			layering: building(mosc("layered-image", "worker", img1), osbuild.StateBuilding),
			want:     "False False False 2 2 2 0",
			wantMsg:  "Pool is paused; OS image build in progress (mosb: layered-abc)", wantConfig: old,
		},
		{
			name: "layered, no build yet", pool: workerPool(cur),
			nodes:    []*corev1.Node{testNode("a", on(old))},
			layering: &Layering{Config: mosc("layered-image", "worker", "")},
			want:     "False True False 1 0 0 0",
			wantMsg:  "Pool is waiting for a new OS image build to start (mosc: layered-image)", wantConfig: old,
		},
		{
			name: "layered, no build yet, no nodes: still not updated", pool: workerPool(cur),
			layering: &Layering{Config: mosc("layered-image", "worker", "")},
			want:     "False True False 0 0 0 0",
			wantMsg:  "Pool is waiting for a new OS image build to start (mosc: layered-image)",
		},
		{
			name: "layered, build prepared", pool: workerPool(cur), nodes: []*corev1.Node{testNode("a", on(old))},
			layering: building(mosc("layered-image", "worker", ""), osbuild.StatePrepared), want: "False True False 1 0 0 0",
			wantMsg: "Pool is waiting for OS image build to start (mosb: layered-abc)", wantConfig: old,
		},
		{
			name: "layered, build created not started", pool: workerPool(cur), nodes: []*corev1.Node{testNode("a", on(old))},
			layering: building(mosc("layered-image", "worker", ""), osbuild.StateInitial), want: "False True False 1 0 0 0",
			wantMsg: "Pool is waiting for OS image build to start (mosb: layered-abc)", wantConfig: old,
		},
		{
			name: "layered, build failed: Degraded, not updating",
			pool: withPoolCondition(workerPool(cur), mcfgv1.MachineConfigPoolImageBuildDegraded, corev1.ConditionTrue), nodes: []*corev1.Node{testNode("a", on(old))},
			layering: building(mosc("layered-image", "worker", ""), osbuild.StateFailed), want: "False False True 1 0 0 0",
			wantMsg: "Pool update stopped due to OS image build failure (mosb: layered-abc)", wantDegMsg: BuildFailedMessage, wantConfig: old,
		},
		{
			name: "layered, build failed, even before the build service says ImageBuildDegraded", pool: workerPool(cur),
			nodes:    []*corev1.Node{testNode("a", on(old))},
			layering: building(mosc("layered-image", "worker", ""), osbuild.StateFailed), want: "False False True 1 0 0 0",
			wantMsg: "Pool update stopped due to OS image build failure (mosb: layered-abc)", wantDegMsg: BuildFailedMessage, wantConfig: old,
		},
		{
			name: "stale ImageBuildDegraded while a new build runs: not degraded",
			pool: withPoolCondition(workerPool(cur), mcfgv1.MachineConfigPoolImageBuildDegraded, corev1.ConditionTrue), nodes: []*corev1.Node{testNode("a", on(old))},
			layering: building(mosc("layered-image", "worker", ""), osbuild.StateBuilding), want: "False True False 1 0 0 0",
			wantMsg: "Pool is waiting for OS image build to complete (mosb: layered-abc)", wantConfig: old,
		},
		{
			name: "layered, build interrupted", pool: workerPool(cur), nodes: []*corev1.Node{testNode("a", on(old))},
			layering: building(mosc("layered-image", "worker", ""), osbuild.StateInterrupted), want: "False False False 1 0 0 0",
			wantMsg: "Pool update stopped due to OS image build being interrupted (mosb: layered-abc)", wantConfig: old,
		},
		{
			name: "layered, built, nodes applying", pool: workerPool(cur),
			nodes:    []*corev1.Node{testNode("a", on(cur), withImages(img2, img2)), testNode("b", on(cur), withImages(img1, img2), withConfigs("", "", wellknown.NodeStateWorking))},
			layering: &Layering{Config: mosc("layered-image", "worker", img2), Build: mosb("layered-abc", "layered-image", cur, osbuild.StateSucceeded, img2)},
			want:     "False True False 2 1 1 0",
			wantMsg:  "Pool is waiting for nodes to apply OS image (mosb: layered-abc)", wantConfig: old,
		},
		{
			name: "layered, all updated", pool: workerPool(cur),
			nodes:       []*corev1.Node{testNode("a", on(cur), withImages(img2, img2))},
			layering:    &Layering{Config: mosc("layered-image", "worker", img2), Build: mosb("layered-abc", "layered-image", cur, osbuild.StateSucceeded, img2)},
			want:        "True False False 1 1 1 0",
			wantUpdated: "All nodes are updated with MachineConfig " + cur + " / Image " + img2, wantMsg: "", wantConfig: cur,
		},
		{
			name: "layered, a node degraded: update paused", pool: workerPool(cur),
			nodes:    []*corev1.Node{testNode("a", withConfigs(old, cur, wellknown.NodeStateDegraded), withImages(img1, img2))},
			layering: &Layering{Config: mosc("layered-image", "worker", img2), Build: mosb("layered-abc", "layered-image", cur, osbuild.StateSucceeded, img2)},
			want:     "False False True 1 0 0 1",
			wantMsg:  "Pool update paused due to degraded condition", wantConfig: old,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.pool.Status.Configuration.Name = old
			if tc.wantConfig == "" {
				tc.wantConfig = old
			}
			before := tc.pool.DeepCopy()
			st := CalculateStatus(StatusInputs{Pool: tc.pool, Nodes: tc.nodes, Layering: tc.layering, Now: metav1.NewTime(t0)})
			assert.Equal(t, tc.want, columnsOf(st), "oc get mcp columns")
			assert.Equal(t, tc.wantMsg, message(st, mcfgv1.MachineConfigPoolUpdating), "Updating message")
			if tc.wantUpdated != "" {
				assert.Equal(t, tc.wantUpdated, message(st, mcfgv1.MachineConfigPoolUpdated))
			}
			if tc.wantDegMsg != "" {
				assert.Equal(t, tc.wantDegMsg, message(st, mcfgv1.MachineConfigPoolDegraded))
			}
			assert.Equal(t, tc.wantConfig, st.Configuration.Name, "status.configuration")
			assert.Equal(t, before, tc.pool, "the pool is not modified")
		})
	}
}

func TestCalculateStatusPausedLayeredMessages(t *testing.T) {
	const cur = "rendered-worker-new"
	tests := []struct {
		name  string
		build *mcfgv1.MachineOSBuild
		want  string
	}{
		{name: "no build", want: "Pool is paused; waiting for a new OS image build to start (mosc: m)"},
		{name: "initial", build: mosb("m-1", "m", cur, osbuild.StateInitial, ""), want: "Pool is paused; OS image build has been created but not yet started (mosb: m-1)"},
		{name: "prepared", build: mosb("m-1", "m", cur, osbuild.StatePrepared, ""), want: "Pool is paused; OS image build has been prepared but will not rollout (mosb: m-1)"},
		{name: "building", build: mosb("m-1", "m", cur, osbuild.StateBuilding, ""), want: "Pool is paused; OS image build in progress (mosb: m-1)"},
		{name: "failed", build: mosb("m-1", "m", cur, osbuild.StateFailed, ""), want: "Pool is paused; OS image build failed (mosb: m-1)"},
		{name: "interrupted", build: mosb("m-1", "m", cur, osbuild.StateInterrupted, ""), want: "Pool is paused; OS image build was interrupted (mosb: m-1)"},
		{name: "succeeded", build: mosb("m-1", "m", cur, osbuild.StateSucceeded, "quay.io/x/os@sha256:2"), want: "Pool is paused; OS image build completed successfully (mosb: m-1)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := &Layering{Config: mosc("m", "worker", "quay.io/x/os@sha256:2"), Build: tc.build}
			st := CalculateStatus(StatusInputs{Pool: paused(workerPool(cur)), Nodes: []*corev1.Node{testNode("a", on("rendered-worker-old"))}, Layering: l, Now: metav1.NewTime(t0)})
			c := poolstatus.FindCondition(&st, mcfgv1.MachineConfigPoolUpdating)
			require.NotNil(t, c)
			assert.Equal(t, corev1.ConditionFalse, c.Status, "a paused pool is never Updating")
			assert.Equal(t, tc.want, c.Message)
		})
	}
}

func TestCalculateStatusNodeDegraded(t *testing.T) {
	const old, cur = "rendered-worker-old", "rendered-worker-new"
	nodes := []*corev1.Node{
		testNode("n2", withConfigs(old, cur, wellknown.NodeStateUnreconcilable), withAnnotation(wellknown.ReasonAnnotation, "can't reconcile")),
		testNode("n1", withConfigs(old, cur, wellknown.NodeStateDegraded), withAnnotation(wellknown.ReasonAnnotation, "boom")),
		testNode("n3", withConfigs(old, cur, wellknown.NodeStateDegraded)),
	}
	st := CalculateStatus(StatusInputs{Pool: workerPool(cur), Nodes: nodes, Now: metav1.NewTime(t0)})
	c := poolstatus.FindCondition(&st, mcfgv1.MachineConfigPoolNodeDegraded)
	require.NotNil(t, c)
	assert.Equal(t, corev1.ConditionTrue, c.Status)
	assert.Equal(t, "3 nodes are reporting degraded status on sync", c.Reason)
	assert.Equal(t, `Node n1 is reporting: "boom", Node n2 is reporting: "can't reconcile"`, c.Message)
	assert.Equal(t, c.Message, message(st, mcfgv1.MachineConfigPoolDegraded))
}

func TestCalculateStatusKeepsOthersAndTimes(t *testing.T) {
	const cur = "rendered-worker-new"
	pool := workerPool(cur)
	pool.Generation = 7
	poolstatus.SetCondition(&pool.Status, mcfgv1.MachineConfigPoolCondition{Type: mcfgv1.MachineConfigPoolRenderDegraded, Status: corev1.ConditionFalse, Reason: "Rendered"}, metav1.NewTime(t0))
	nodes := []*corev1.Node{testNode("a", on(cur))}
	first := CalculateStatus(StatusInputs{Pool: pool, Nodes: nodes, Now: metav1.NewTime(t0)})
	pool.Status = first
	second := CalculateStatus(StatusInputs{Pool: pool, Nodes: nodes, Now: metav1.NewTime(t0.Add(time.Hour))})
	assert.Equal(t, first, second, "unchanged inputs give the same status (no new transition times)")
	assert.Equal(t, int64(7), second.ObservedGeneration)
	rd := poolstatus.FindCondition(&second, mcfgv1.MachineConfigPoolRenderDegraded)
	require.NotNil(t, rd, "the render controller's condition is kept")
	assert.Equal(t, "Rendered", rd.Reason)

	cc := &mcfgv1.ControllerConfig{Status: mcfgv1.ControllerConfigStatus{ControllerCertificates: []mcfgv1.ControllerCertificate{
		{BundleFile: "KubeAPIServerServingCAData", Subject: "CN=kube-apiserver", NotAfter: &metav1.Time{Time: t0}},
		{BundleFile: "RootCAData", Subject: "CN=root"},
	}}}
	withCerts := CalculateStatus(StatusInputs{Pool: pool, Nodes: nodes, ControllerConfig: cc, Now: metav1.NewTime(t0)})
	assert.Equal(t, []mcfgv1.CertExpiry{{Bundle: "KubeAPIServerServingCAData", Subject: "CN=kube-apiserver", Expiry: &metav1.Time{Time: t0}}}, withCerts.CertExpirys)
}
