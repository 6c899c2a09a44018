package prune

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestActionMessage(t *testing.T) {
	t.Parallel()
	c := Candidate{Name: "rendered-worker-x", Reasons: []string{"pool worker spec.configuration"}}
	tests := []struct {
		name   string
		action Action
		dryRun bool
		want   string
	}{
		{name: "delete", action: Action{Candidate: c, Verdict: Delete}, want: "deleting rendered MachineConfig rendered-worker-x"},
		{name: "dry-run delete", action: Action{Candidate: c, Verdict: Delete}, dryRun: true, want: "dry-run deleting rendered MachineConfig rendered-worker-x"},
		{name: "skip", action: Action{Candidate: c, Verdict: Skip}, want: "Skip deleting rendered MachineConfig rendered-worker-x as it's currently in use"},
		{name: "dry-run skip", action: Action{Candidate: c, Verdict: Skip}, dryRun: true,
			want: "Skip dry-run deleting rendered MachineConfig rendered-worker-x as it's currently in use"},
		{name: "keep prints nothing", action: Action{Candidate: c, Verdict: Keep}, dryRun: true, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.action.Message(tt.dryRun))
		})
	}
}

func TestFormatList(t *testing.T) {
	t.Parallel()
	inUse := []string{"node worker-0 currentConfig"}
	tests := []struct {
		name  string
		cands []Candidate
		want  string
	}{
		{name: "empty", want: ""},
		{name: "one pool heading per pool, centred in 80 columns", cands: []Candidate{
			{Name: "rendered-master-a", Pool: "master", Created: at(0)},
			{Name: "rendered-worker-a", Pool: "worker", Created: at(61), Reasons: inUse},
			{Name: "rendered-worker-b", Pool: "worker", Created: at(3600)},
		}, want: "\n" + spaces(37) + "master\n" +
			"\nrendered-master-a -- 2025-03-04 10:00:00 +0000 UTC (Currently in use: false)\n" +
			"\n" + spaces(37) + "worker\n" +
			"\nrendered-worker-a -- 2025-03-04 10:01:01 +0000 UTC (Currently in use: true)\n" +
			"\nrendered-worker-b -- 2025-03-04 11:00:00 +0000 UTC (Currently in use: false)\n"},
		{name: "odd-length pool name", cands: []Candidate{{Name: "rendered-infra-a", Pool: "infra", Created: at(0)}},
			want: "\n" + spaces(37) + "infra\n\nrendered-infra-a -- 2025-03-04 10:00:00 +0000 UTC (Currently in use: false)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, FormatList(tt.cands))
		})
	}
}

func spaces(n int) string { return strings.Repeat(" ", n) }

func TestFormatPoolConfigs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		pools []PoolConfig
		want  string
	}{
		{name: "none", want: ""},
		{name: "pools in order", pools: []PoolConfig{{Pool: "master", Status: "rendered-master-a", Spec: "rendered-master-a"}, {Pool: "worker", Status: "rendered-worker-a", Spec: "rendered-worker-b"}},
			want: "master\nstatus: rendered-master-a\nspec: rendered-master-a\nworker\nstatus: rendered-worker-a\nspec: rendered-worker-b\n"},
		{name: "pool not rendered yet", pools: []PoolConfig{{Pool: "infra"}}, want: "infra\nstatus: \nspec: \n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, FormatPoolConfigs(tt.pools))
		})
	}
}

func TestJSONReports(t *testing.T) {
	t.Parallel()
	plan := Plan{Actions: []Action{
		{Candidate: Candidate{Name: "rendered-worker-a", Pool: "worker", Created: at(0)}, Verdict: Delete},
		{Candidate: Candidate{Name: "rendered-worker-b", Pool: "worker", Created: at(1), Reasons: []string{"machineosbuild layered-image-ab12 spec.machineConfig"}}, Verdict: Skip},
		{Candidate: Candidate{Name: "rendered-worker-c", Pool: "worker", Created: at(2)}, Verdict: Keep},
	}}
	report := NewPruneReport(plan, true)
	report.Items[0].Result = DryRunDeleted
	tests := []struct {
		name string
		doc  any
		want string
	}{
		{name: "prune", doc: report, want: `{"dryRun":true,"items":[
			{"name":"rendered-worker-a","pool":"worker","created":"2025-03-04T10:00:00Z","inUse":false,"reasons":[],"action":"delete","result":"dry-run"},
			{"name":"rendered-worker-b","pool":"worker","created":"2025-03-04T10:00:01Z","inUse":true,"reasons":["machineosbuild layered-image-ab12 spec.machineConfig"],"action":"skip"},
			{"name":"rendered-worker-c","pool":"worker","created":"2025-03-04T10:00:02Z","inUse":false,"reasons":[],"action":"keep"}]}`},
		{name: "empty prune", doc: NewPruneReport(Plan{}, false), want: `{"dryRun":false,"items":[]}`},
		{name: "list", doc: NewListReport([]Candidate{plan.Actions[1].Candidate}), want: `{"items":[
			{"name":"rendered-worker-b","pool":"worker","created":"2025-03-04T10:00:01Z","inUse":true,"reasons":["machineosbuild layered-image-ab12 spec.machineConfig"]}]}`},
		{name: "empty list", doc: NewListReport(nil), want: `{"items":[]}`},
		{name: "pools", doc: NewPoolsReport([]PoolConfig{{Pool: "worker", Status: "a", Spec: "b"}}), want: `{"pools":[{"name":"worker","status":"a","spec":"b"}]}`},
		{name: "no pools", doc: NewPoolsReport(nil), want: `{"pools":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := json.Marshal(tt.doc)
			require.NoError(t, err)
			assert.JSONEq(t, tt.want, string(raw))
		})
	}
}
