package machineos

import (
	"errors"
	"fmt"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/prometheus/client_golang/prometheus"
	batchv1 "k8s.io/api/batch/v1"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos/osbuild"
)

// Metrics are the build service's Prometheus metrics, with the reference's names and labels.
type Metrics struct {
	// BuildState is ocl_build_state{pool,state}: one-hot, 1 for the state of the pool's latest build.
	BuildState *prometheus.GaugeVec
	// BuildDuration is ocl_build_duration_seconds{pool,state}: buildStart to buildEnd of finished builds.
	BuildDuration *prometheus.HistogramVec
	// BuildTotal is ocl_build_total{pool,state}: finished builds.
	BuildTotal *prometheus.CounterVec
	// BuildRetries is ocl_build_retries_total{pool}: failed build pods.
	BuildRetries *prometheus.CounterVec
	// QueueDuration is ocl_build_queue_duration_seconds{pool}: a build's creation to its Job starting.
	QueueDuration *prometheus.HistogramVec
}

// metricStates are the state label values (the reference's lower-case words).
var metricStates = [...]string{"none", "pending", "building", "succeeded", "failed", "interrupted"}

// NewMetrics creates the metrics and registers them on reg (controller-runtime's metrics.Registry in the
// controller binary); collectors registered already (a second manager in one process) are reused.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		BuildState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ocl_build_state",
			Help: "State of the latest OS image build of a pool (one-hot)"}, []string{"pool", "state"}),
		BuildDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ocl_build_duration_seconds",
			Help:    "Duration of finished OS image builds",
			Buckets: []float64{10, 30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600}}, []string{"pool", "state"}),
		BuildTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ocl_build_total",
			Help: "Finished OS image builds"}, []string{"pool", "state"}),
		BuildRetries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ocl_build_retries_total",
			Help: "Failed build pods (each one retried by its Job until the back-off limit)"}, []string{"pool"}),
		QueueDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ocl_build_queue_duration_seconds",
			Help: "Time from a build's creation to its Job starting", Buckets: []float64{1, 5, 10, 30, 60, 120, 300, 600}}, []string{"pool"}),
	}
	var err error
	if m.BuildState, err = register(reg, m.BuildState); err != nil {
		return nil, err
	}
	if m.BuildDuration, err = register(reg, m.BuildDuration); err != nil {
		return nil, err
	}
	if m.BuildTotal, err = register(reg, m.BuildTotal); err != nil {
		return nil, err
	}
	if m.BuildRetries, err = register(reg, m.BuildRetries); err != nil {
		return nil, err
	}
	if m.QueueDuration, err = register(reg, m.QueueDuration); err != nil {
		return nil, err
	}
	return m, nil
}

func register[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	if err := reg.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if !errors.As(err, &already) {
			return c, fmt.Errorf("registering build metrics: %w", err)
		}
		existing, ok := already.ExistingCollector.(T)
		if !ok {
			return c, errors.New("registering build metrics: a different collector is registered under the same name")
		}
		return existing, nil
	}
	return c, nil
}

// metricState is a state's label value.
func metricState(s osbuild.State) string {
	switch s {
	case osbuild.StateInitial:
		return "none"
	case osbuild.StatePrepared:
		return "pending"
	default:
		return strings.ToLower(string(s))
	}
}

// record updates the metrics for a build that reached state (job may be nil).
func (m *Metrics) record(mosb *mcfgv1.MachineOSBuild, state osbuild.State, job *batchv1.Job) {
	if m == nil {
		return
	}
	pool := mosb.Labels[wellknown.TargetMachineConfigPoolLabel]
	for _, s := range metricStates {
		v := 0.0
		if s == metricState(state) {
			v = 1
		}
		m.BuildState.WithLabelValues(pool, s).Set(v)
	}
	if state == osbuild.StateBuilding && job != nil && job.Status.StartTime != nil {
		m.QueueDuration.WithLabelValues(pool).Observe(job.Status.StartTime.Sub(mosb.CreationTimestamp.Time).Seconds())
	}
	if !state.IsTerminal() {
		return
	}
	m.BuildTotal.WithLabelValues(pool, metricState(state)).Inc()
	if s, e := mosb.Status.BuildStart, mosb.Status.BuildEnd; s != nil && e != nil {
		m.BuildDuration.WithLabelValues(pool, metricState(state)).Observe(e.Sub(s.Time).Seconds())
	}
	if job != nil && job.Status.Failed > 0 {
		m.BuildRetries.WithLabelValues(pool).Add(float64(job.Status.Failed))
	}
}
