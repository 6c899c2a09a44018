package printers

import (
	"bytes"
	"strings"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/imagemode/imagemode/machineos/osbuild"
)

func TestTable(t *testing.T) {
	t.Parallel()
	tb := NewTable("name", "config", "age")
	tb.AddRow("worker", "rendered-worker-1", "5m")
	tb.AddRow("layered-image", "", "12d")
	var b bytes.Buffer
	require.NoError(t, tb.Write(&b))
	assert.Equal(t, "NAME            CONFIG              AGE\n"+
		"worker          rendered-worker-1   5m\n"+
		"layered-image                       12d\n", b.String())
}

func TestAge(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		ago  time.Duration
		want string
	}{
		{name: "seconds", ago: 42 * time.Second, want: "42s"},
		{name: "minutes and seconds", ago: 150 * time.Second, want: "2m30s"},
		{name: "minutes", ago: 5*time.Minute + 10*time.Second, want: "5m10s"},
		{name: "hours", ago: 3*time.Hour + 20*time.Minute, want: "3h20m"},
		{name: "days", ago: 50 * time.Hour, want: "2d2h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Age(metav1.NewTime(now.Add(-tt.ago)), now))
		})
	}
	assert.Equal(t, "<unknown>", Age(metav1.Time{}, now))
}

func TestShortImage(t *testing.T) {
	t.Parallel()
	d := strings.Repeat("0123456789abcdef", 4)
	assert.Equal(t, "registry.example.com:5000/os/img@sha256:0123456789ab", ShortImage("registry.example.com:5000/os/img@sha256:"+d))
	assert.Equal(t, "registry.example.com/os/img:tag", ShortImage("registry.example.com/os/img:tag"))
	assert.Equal(t, "", ShortImage(""))
}

func TestBuildState(t *testing.T) {
	t.Parallel()
	cond := func(typ string, s metav1.ConditionStatus) metav1.Condition {
		return metav1.Condition{Type: typ, Status: s}
	}
	tests := []struct {
		name  string
		conds []metav1.Condition
		want  string
	}{
		{name: "no conditions", want: osbuild.DisplayPending},
		{name: "all false", conds: []metav1.Condition{cond(string(osbuild.StatePrepared), "False"), cond(string(osbuild.StateBuilding), "False")}, want: osbuild.DisplayPending},
		{name: "building", conds: []metav1.Condition{cond(string(osbuild.StatePrepared), "False"), cond(string(osbuild.StateBuilding), "True")}, want: string(osbuild.StateBuilding)},
		{name: "failed", conds: []metav1.Condition{cond(string(osbuild.StateBuilding), "False"), cond(string(osbuild.StateFailed), "True")}, want: string(osbuild.StateFailed)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := BuildState(&mcfgv1.MachineOSBuild{Status: mcfgv1.MachineOSBuildStatus{Conditions: tt.conds}})
			assert.Equal(t, tt.want, got)
		})
	}
	assert.True(t, IsTerminal(string(osbuild.StateFailed)))
	assert.False(t, IsTerminal(string(osbuild.StateBuilding)))
}

func TestWriteAndCheckOutput(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	require.NoError(t, Write(&b, YAML, map[string]string{"a": "b"}))
	assert.Equal(t, "a: b\n", b.String())
	b.Reset()
	require.NoError(t, Write(&b, JSON, map[string]string{"a": "b"}))
	assert.Equal(t, "{\n    \"a\": \"b\"\n}\n", b.String())
	assert.NoError(t, CheckOutput("", JSON))
	assert.EqualError(t, CheckOutput("wide", JSON, YAML), `unsupported output format "wide" (allowed: json, yaml)`)
}
