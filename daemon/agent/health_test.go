package agent

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"

	rolloutsv1 "github.com/imagemode/imagemode/api/rollouts/v1alpha1"
	"github.com/imagemode/imagemode/daemon"
	"github.com/imagemode/imagemode/daemon/simhost"
)

type fakeRunner struct {
	calls []string
	fail  map[string]error // by command line
}

func (f *fakeRunner) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	line := strings.Join(append([]string{name}, args...), " ")
	f.calls = append(f.calls, line)
	if err := f.fail[line]; err != nil {
		return []byte("partial output"), err
	}
	return nil, nil
}

func TestHealthReport(t *testing.T) {
	checks := rolloutsv1.NodeHealthChecks{Config: "rendered-b", Image: "r/i@sha256:b",
		Commands: []rolloutsv1.HealthCommand{{Name: "app", Command: "test -e /etc/app"}, {Name: "second", Command: "true"}},
		Units:    []string{"crio.service"}}
	rawChecks, _ := json.Marshal(checks)
	desired := Target{Config: "rendered-b", Image: "r/i@sha256:b"}
	report := func(r rolloutsv1.HealthReport) string { raw, _ := json.Marshal(r); return string(raw) }
	cmdErr := &daemon.CommandError{Argv: []string{"sh", "-c", "test -e /etc/app"}, ExitCode: 1, Stderr: "no app", Err: errors.New("exit status 1")}
	for _, tc := range []struct {
		name       string
		ann        map[string]string
		fail       map[string]error
		wantCalls  []string
		wantReport *rolloutsv1.HealthReport
	}{
		{name: "no checks", ann: map[string]string{}},
		{name: "checks for another target", ann: map[string]string{rolloutsv1.HealthChecksAnnotation: strings.Replace(string(rawChecks), "rendered-b", "rendered-c", 1)}},
		{name: "already reported", ann: map[string]string{rolloutsv1.HealthChecksAnnotation: string(rawChecks),
			rolloutsv1.HealthReportAnnotation: report(rolloutsv1.HealthReport{Config: "rendered-b", Image: "r/i@sha256:b", Passed: true})}},
		{name: "all pass", ann: map[string]string{rolloutsv1.HealthChecksAnnotation: string(rawChecks),
			rolloutsv1.HealthReportAnnotation: report(rolloutsv1.HealthReport{Config: "rendered-a", Passed: true})},
			wantCalls:  []string{"sh -c test -e /etc/app", "sh -c true", "systemctl is-active crio.service"},
			wantReport: &rolloutsv1.HealthReport{Config: "rendered-b", Image: "r/i@sha256:b", Passed: true}},
		{name: "first failure ends the run", ann: map[string]string{rolloutsv1.HealthChecksAnnotation: string(rawChecks)},
			fail:       map[string]error{"sh -c test -e /etc/app": cmdErr},
			wantCalls:  []string{"sh -c test -e /etc/app"},
			wantReport: &rolloutsv1.HealthReport{Config: "rendered-b", Image: "r/i@sha256:b", Check: "app", Output: "partial output\nno app\nexit status 1"}},
		{name: "unit inactive", ann: map[string]string{rolloutsv1.HealthChecksAnnotation: string(rawChecks)},
			fail:       map[string]error{"systemctl is-active crio.service": errors.New("inactive")},
			wantCalls:  []string{"sh -c test -e /etc/app", "sh -c true", "systemctl is-active crio.service"},
			wantReport: &rolloutsv1.HealthReport{Config: "rendered-b", Image: "r/i@sha256:b", Check: "crio.service", Output: "partial output\ninactive"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host, err := simhost.New(t.TempDir(), simhost.Options{})
			require.NoError(t, err)
			runner := &fakeRunner{fail: tc.fail}
			a, err := New(nil, events.NewFakeRecorder(10), Options{NodeName: "n", Host: host, Commands: runner})
			require.NoError(t, err)
			node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Annotations: tc.ann}}
			got, ok := a.healthReport(context.Background(), node, desired)
			assert.Equal(t, tc.wantCalls, runner.calls)
			if tc.wantReport == nil {
				assert.False(t, ok)
				return
			}
			require.True(t, ok)
			var r rolloutsv1.HealthReport
			require.NoError(t, json.Unmarshal([]byte(got), &r))
			assert.Equal(t, *tc.wantReport, r)
		})
	}
}

// TestHealthCommandsOnSimulatedHost runs a check through the simulated host's own runner (chroot into its
// root): a host without a shell fails the check with the error.
func TestHealthCommandsOnSimulatedHost(t *testing.T) {
	host, err := simhost.New(t.TempDir(), simhost.Options{})
	require.NoError(t, err)
	_, err = host.Commands().Run(context.Background(), "sh", "-c", "true")
	require.Error(t, err, "an unprovisioned host has no sh")
}
