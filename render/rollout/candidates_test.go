package rollout

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/imagemode/imagemode/internal/wellknown"
)

func TestMaxUnavailable(t *testing.T) {
	tests := []struct {
		name    string
		value   *intstr.IntOrString
		nodes   int
		want    int
		wantErr bool
	}{
		{name: "unset is 1", nodes: 10, want: 1},
		{name: "int", value: new(intstr.FromInt32(2)), nodes: 10, want: 2},
		{name: "int larger than the pool", value: new(intstr.FromInt32(20)), nodes: 10, want: 20},
		{name: "zero is 1", value: new(intstr.FromInt32(0)), nodes: 10, want: 1},
		{name: "negative is 1", value: new(intstr.FromInt32(-3)), nodes: 10, want: 1},
		{name: "percent of 5000", value: new(intstr.FromString("10%")), nodes: 5000, want: 500},
		{name: "percent rounds down", value: new(intstr.FromString("25%")), nodes: 10, want: 2},
		{name: "percent rounding to 0 is 1", value: new(intstr.FromString("10%")), nodes: 5, want: 1},
		{name: "percent of an empty pool is 1", value: new(intstr.FromString("50%")), nodes: 0, want: 1},
		{name: "100%", value: new(intstr.FromString("100%")), nodes: 7, want: 7},
		{name: "not a percentage", value: new(intstr.FromString("ten")), nodes: 10, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := workerPool("rendered-worker-a")
			p.Spec.MaxUnavailable = tc.value
			got, err := MaxUnavailable(p, tc.nodes)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestSelectCandidates(t *testing.T) {
	const a, b = "rendered-worker-a", "rendered-worker-b"
	target := Target{Config: b}
	old := func(name string, opts ...nodeOpt) *corev1.Node {
		return testNode(name, append([]nodeOpt{on(a)}, opts...)...)
	}
	tests := []struct {
		name           string
		nodes          []*corev1.Node
		max            int
		wantCandidates []string
		wantWaiting    []string
		wantCapacity   int
		wantUnavail    int
		wantFailing    int
	}{
		{
			name:  "capacity = maxUnavailable when all are available",
			nodes: []*corev1.Node{old("n1"), old("n2"), old("n3")}, max: 2,
			wantCandidates: []string{"n1", "n2"}, wantWaiting: []string{"n3"}, wantCapacity: 2,
		},
		{
			name:  "fewer candidates than capacity: all, in input order",
			nodes: []*corev1.Node{old("n2"), old("n1"), testNode("n3", on(b))}, max: 5,
			wantCandidates: []string{"n2", "n1"}, wantCapacity: 5,
		},
		{
			name:  "a working node uses up capacity",
			nodes: []*corev1.Node{testNode("w", withConfigs(a, b, wellknown.NodeStateWorking)), old("n1"), old("n2")}, max: 2,
			wantCandidates: []string{"n1"}, wantWaiting: []string{"n2"}, wantCapacity: 1, wantUnavail: 1,
		},
		{
			name:  "unavailable nodes reaching maxUnavailable: none",
			nodes: []*corev1.Node{testNode("w", withConfigs(a, b, wellknown.NodeStateWorking)), old("x", notReady()), old("n1")}, max: 2,
			wantWaiting: []string{"n1"}, wantCapacity: 0, wantUnavail: 2,
		},
		{
			name:  "a node failing the target uses up capacity",
			nodes: []*corev1.Node{testNode("f", withConfigs(a, b, wellknown.NodeStateDegraded)), old("n1"), old("n2")}, max: 2,
			wantCandidates: []string{"n1"}, wantWaiting: []string{"n2"}, wantCapacity: 1, wantFailing: 1,
		},
		{
			name:  "a node failing an older target is a candidate again",
			nodes: []*corev1.Node{testNode("f", withConfigs("rendered-worker-0", a, wellknown.NodeStateDegraded)), old("n1")}, max: 1,
			wantCandidates: []string{"f"}, wantWaiting: []string{"n1"}, wantCapacity: 1,
		},
		{
			name:  "not ready and cordoned nodes are never chosen (and count as unavailable)",
			nodes: []*corev1.Node{old("nr", notReady()), old("c", cordoned()), old("n1")}, max: 3,
			wantCandidates: []string{"n1"}, wantCapacity: 1, wantUnavail: 2,
		},
		{
			name:           "short capacity: zone order, then oldest",
			max:            3,
			nodes:          []*corev1.Node{old("z-b-old", inZone("b"), createdAt(0)), old("nozone", createdAt(-time.Hour)), old("z-a-new", inZone("a"), createdAt(2*time.Hour)), old("z-a-old", inZone("a"), createdAt(time.Hour))},
			wantCandidates: []string{"z-a-old", "z-a-new", "z-b-old"}, wantWaiting: []string{"nozone"}, wantCapacity: 3,
		},
		{
			name:  "done nodes are not candidates",
			nodes: []*corev1.Node{testNode("n1", on(b)), testNode("n2", on(b))}, max: 1,
			wantCapacity: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sel := SelectCandidates(tc.nodes, target, tc.max)
			assert.Equal(t, nilIfEmpty(tc.wantCandidates), nilIfEmpty(names(sel.Candidates)), "candidates")
			assert.Equal(t, nilIfEmpty(tc.wantWaiting), nilIfEmpty(names(sel.Waiting)), "waiting")
			assert.Equal(t, tc.wantCapacity, sel.Capacity, "capacity")
			assert.Equal(t, tc.wantUnavail, sel.Unavailable, "unavailable")
			assert.Equal(t, tc.wantFailing, sel.Failing, "failing")
		})
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestSortForUpdate(t *testing.T) {
	tests := []struct {
		name  string
		nodes []*corev1.Node
		want  []string
	}{
		{
			name:  "zoned before unzoned, zones by name",
			nodes: []*corev1.Node{testNode("u"), testNode("c", inZone("us-east-1c")), testNode("a", inZone("us-east-1a"))},
			want:  []string{"a", "c", "u"},
		},
		{
			name:  "oldest first within a zone and among unzoned nodes",
			nodes: []*corev1.Node{testNode("u-new", createdAt(time.Hour)), testNode("z-new", inZone("z"), createdAt(time.Hour)), testNode("u-old"), testNode("z-old", inZone("z"))},
			want:  []string{"z-old", "z-new", "u-old", "u-new"},
		},
		{
			name:  "same age: by name",
			nodes: []*corev1.Node{testNode("n3"), testNode("n1"), testNode("n2")},
			want:  []string{"n1", "n2", "n3"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]*corev1.Node(nil), tc.nodes...)
			assert.Equal(t, tc.want, names(SortForUpdate(tc.nodes)))
			assert.Equal(t, names(in), names(tc.nodes), "the input is not reordered")
		})
	}
}

func TestSelectCandidatesLayered(t *testing.T) {
	const cfg, img1, img2 = "rendered-worker-a", "quay.io/x/os@sha256:1", "quay.io/x/os@sha256:2"
	target := Target{Config: cfg, Layered: true, Image: img2}
	var nodes []*corev1.Node
	for i := 0; i < 4; i++ {
		nodes = append(nodes, testNode(fmt.Sprintf("n%d", i), on(cfg), withImages(img1, img1)))
	}
	nodes = append(nodes, testNode("done", on(cfg), withImages(img2, img2)), testNode("targeted", on(cfg), withImages(img1, img2)))
	sel := SelectCandidates(nodes, target, 3)
	assert.Equal(t, 1, sel.Unavailable, "the node applying the new image")
	assert.Equal(t, []string{"n0", "n1"}, names(sel.Candidates))
	assert.Equal(t, []string{"n2", "n3"}, names(sel.Waiting))
}
