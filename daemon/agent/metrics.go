package agent

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the daemon's Prometheus metrics, with the reference's names (§9).
type Metrics struct {
	// State is mcd_state{state,reason}: 1 for the node's current state, one-hot.
	State *prometheus.GaugeVec
	// PivotErrors counts failed OS image rebases (mcd_pivot_errors_total).
	PivotErrors prometheus.Counter
	// RebootsFailed counts reboots that could not be queued (mcd_reboots_failed_total).
	RebootsFailed prometheus.Counter
	// UpdateState is mcd_update_state{config,err}: the last update's target and its error ("" on success).
	UpdateState *prometheus.GaugeVec
	// ConfigDrift is mcd_config_drift: the Unix time of the last detected config drift (0 when none).
	ConfigDrift prometheus.Gauge
}

// NewMetrics creates the metrics and registers them with reg (a fresh registry per simulated node, the
// default one in the daemon binary).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		State: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mcd_state",
			Help: "The daemon's state (Done, Working, Degraded, Unreconcilable) and reason, one-hot."}, []string{"state", "reason"}),
		PivotErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "mcd_pivot_errors_total",
			Help: "OS image rebases that failed."}),
		RebootsFailed: prometheus.NewCounter(prometheus.CounterOpts{Name: "mcd_reboots_failed_total",
			Help: "Reboots that could not be queued."}),
		UpdateState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mcd_update_state",
			Help: "The last update's target config and error (empty when it succeeded)."}, []string{"config", "err"}),
		ConfigDrift: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mcd_config_drift",
			Help: "Unix time of the last config drift detected on the node, 0 when none."}),
	}
	for _, c := range []prometheus.Collector{m.State, m.PivotErrors, m.RebootsFailed, m.UpdateState, m.ConfigDrift} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) setState(state, reason string) {
	m.State.Reset()
	if len(reason) > 200 {
		reason = reason[:200]
	}
	m.State.WithLabelValues(state, reason).Set(1)
}

func (m *Metrics) setUpdate(config string, err error) {
	m.UpdateState.Reset()
	msg := ""
	if err != nil {
		msg = err.Error()
		if len(msg) > 200 {
			msg = msg[:200]
		}
	}
	m.UpdateState.WithLabelValues(config, msg).Set(1)
}
