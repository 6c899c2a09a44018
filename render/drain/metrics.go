package drain

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the drain controller's metrics.
type Metrics struct {
	// DrainErr is mcc_drain_err{node}: 1 while a node's drain has been failing for longer than StuckAfter.
	DrainErr *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them on reg (controller-runtime's metrics.Registry in the
// controller binary). Collectors already registered there (a second manager in the same process) are reused.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{DrainErr: prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "mcc_drain_err",
		Help: "Set to 1 while the drain of a node has been failing for longer than the drain timeout",
	}, []string{"node"})}
	if err := reg.Register(m.DrainErr); err != nil {
		var already prometheus.AlreadyRegisteredError
		if !errors.As(err, &already) {
			return nil, fmt.Errorf("registering mcc_drain_err: %w", err)
		}
		existing, ok := already.ExistingCollector.(*prometheus.GaugeVec)
		if !ok {
			return nil, fmt.Errorf("registering mcc_drain_err: a different collector is registered under that name")
		}
		m.DrainErr = existing
	}
	return m, nil
}
