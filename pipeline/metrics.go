package pipeline

import (
	"github.com/prometheus/client_golang/prometheus"

	"usagedrop/ledger"
)

// Metrics are what the pipeline tells Prometheus. A nil *Metrics records
// nothing.
type Metrics struct {
	drops    *prometheus.CounterVec
	records  *prometheus.CounterVec
	retries  *prometheus.CounterVec
	setAside *prometheus.CounterVec
	sourceUp *prometheus.GaugeVec
}

// NewMetrics registers the pipeline's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usagedrop_drops_finished_total",
			Help: "Dropped files finished, by source and outcome (done, rejected, failed, duplicate, vanished).",
		}, []string{"source", "outcome"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usagedrop_records_imported_total",
			Help: "Usage records Zuora reported imported, by source.",
		}, []string{"source"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usagedrop_step_retries_total",
			Help: "Steps that failed for a passing reason and were scheduled again, by source and state.",
		}, []string{"source", "state"}),
		setAside: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usagedrop_drops_set_aside_total",
			Help: "Drops set aside because they stopped the service or failed too often, by source and step.",
		}, []string{"source", "step"}),
		sourceUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "usagedrop_source_up",
			Help: "1 while a source is watched, 0 once it stopped for an error an operator must fix.",
		}, []string{"source"}),
	}
	reg.MustRegister(m.drops, m.records, m.retries, m.setAside, m.sourceUp)
	return m
}

func (m *Metrics) finished(e *ledger.Entry) {
	if m == nil {
		return
	}
	m.drops.WithLabelValues(e.Source, string(e.State)).Inc()
	if e.State == ledger.Done {
		m.records.WithLabelValues(e.Source).Add(float64(e.Records))
	}
}

func (m *Metrics) retried(e *ledger.Entry) {
	if m != nil {
		m.retries.WithLabelValues(e.Source, string(e.State)).Inc()
	}
}

func (m *Metrics) setAsideAt(e *ledger.Entry, step ledger.Step) {
	if m != nil {
		m.setAside.WithLabelValues(e.Source, string(step)).Inc()
	}
}

func (m *Metrics) up(source string, up bool) {
	if m == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	m.sourceUp.WithLabelValues(source).Set(v)
}
