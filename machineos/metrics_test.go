package machineos

import (
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos/osbuild"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	again, err := NewMetrics(reg)
	require.NoError(t, err, "a second registration reuses the collectors")
	assert.Same(t, m.BuildTotal, again.BuildTotal)

	created := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	mosb := &mcfgv1.MachineOSBuild{ObjectMeta: metav1.ObjectMeta{Name: "p-1", CreationTimestamp: created,
		Labels: map[string]string{wellknown.TargetMachineConfigPoolLabel: "p"}}}
	started := metav1.NewTime(created.Add(7 * time.Second))
	job := &batchv1.Job{Status: batchv1.JobStatus{StartTime: &started}}

	m.record(mosb, osbuild.StateBuilding, job)
	assert.Equal(t, 1.0, testutil.ToFloat64(m.BuildState.WithLabelValues("p", "building")))
	assert.Equal(t, 0.0, testutil.ToFloat64(m.BuildState.WithLabelValues("p", "succeeded")))
	assert.Equal(t, 1, testutil.CollectAndCount(m.QueueDuration))

	end := metav1.NewTime(created.Add(90 * time.Second))
	mosb.Status.BuildStart, mosb.Status.BuildEnd = &created, &end
	job.Status.Failed = 2
	m.record(mosb, osbuild.StateSucceeded, job)
	assert.Equal(t, 0.0, testutil.ToFloat64(m.BuildState.WithLabelValues("p", "building")), "one-hot")
	assert.Equal(t, 1.0, testutil.ToFloat64(m.BuildState.WithLabelValues("p", "succeeded")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.BuildTotal.WithLabelValues("p", "succeeded")))
	assert.Equal(t, 2.0, testutil.ToFloat64(m.BuildRetries.WithLabelValues("p")))
	assert.Equal(t, 1, testutil.CollectAndCount(m.BuildDuration))

	var nilMetrics *Metrics
	nilMetrics.record(mosb, osbuild.StateFailed, nil) // a reconciler without metrics records nothing
}
