package pipeline

import (
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"usagedrop/ledger"
)

// Metrics are what the pipeline tells Prometheus. Every series a source
// or a state can have is there from the start, at zero, so that a rate
// or an alert has something to read before the first event. A nil
// *Metrics records nothing.
type Metrics struct {
	drops      *prometheus.CounterVec
	records    *prometheus.CounterVec
	retries    *prometheus.CounterVec
	setAside   *prometheus.CounterVec
	sourceUp   *prometheus.GaugeVec
	conversion prometheus.Histogram
	imports    prometheus.Histogram
	zuora      *prometheus.CounterVec

	mu    sync.Mutex
	store ledger.Store // read at each scrape for the drops in flight
}

// dropStates are the ledger states a drop is counted in, in order.
var dropStates = []ledger.State{ledger.Discovered, ledger.Claimed, ledger.Fetched, ledger.Converted, ledger.Uploading,
	ledger.Done, ledger.Rejected, ledger.Failed, ledger.Duplicate, ledger.Vanished}

var (
	outcomes = []ledger.State{ledger.Done, ledger.Rejected, ledger.Failed, ledger.Duplicate, ledger.Vanished}
	steps    = []ledger.Step{ledger.StepClaim, ledger.StepFetch, ledger.StepConvert, ledger.StepUpload, ledger.StepFinish}
	// zuoraOps are the operations zuoraOp names.
	zuoraOps = []string{"token", "submit", "status", "import", "find", "object", "mediation", "soap", "other"}

	dropsDesc = prometheus.NewDesc("usagedrop_drops",
		"Drops not finished yet, by state (an outcome counts until the file is moved with its reports). Read from the ledger: on a PostgreSQL ledger, the whole fleet's drops, the same on every daemon (do not sum them across daemons).", []string{"state"}, nil)
	oldestDesc = prometheus.NewDesc("usagedrop_oldest_pending_seconds",
		"Age of the oldest drop not finished yet; 0 when there is none. Read from the ledger: on a PostgreSQL ledger, the whole fleet's oldest.", nil, nil)
)

// NewMetrics registers the pipeline's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usagedrop_drops_finished_total",
			Help: "Dropped files this daemon finished, by source and outcome (done, rejected, failed, duplicate, vanished); a fleet's is the sum over its daemons.",
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
		conversion: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "usagedrop_conversion_seconds",
			Help:    "Time to convert and validate one drop (the convert step).",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14), // 10ms .. 82s
		}),
		imports: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "usagedrop_import_seconds",
			Help:    "Time from a drop's first part sent to Zuora to the drop finished (imported or failed).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14), // 1s .. 2.3h
		}),
		zuora: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usagedrop_zuora_requests_total",
			Help: `HTTP requests sent to Zuora, by operation and HTTP status code ("error" when no answer came).`,
		}, []string{"operation", "code"}),
	}
	reg.MustRegister(m.drops, m.records, m.retries, m.setAside, m.sourceUp, m.conversion, m.imports, m.zuora, (*ledgerCollector)(m))
	for _, op := range zuoraOps {
		m.zuora.WithLabelValues(op, "200")
	}
	return m
}

// RegisterBuildInfo registers usagedrop_build_info: the version and VCS
// revision main read from the build info (one reader, `usagedrop
// version`'s), and the Go version.
func RegisterBuildInfo(reg prometheus.Registerer, version, revision string) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "usagedrop_build_info",
		Help:        "Always 1; the labels say which build runs.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version(), "revision": revision},
	})
	g.Set(1)
	reg.MustRegister(g)
}

// source creates a source's series at zero.
func (m *Metrics) source(name string) {
	if m == nil {
		return
	}
	for _, o := range outcomes {
		m.drops.WithLabelValues(name, string(o))
	}
	m.records.WithLabelValues(name)
	for _, s := range dropStates {
		m.retries.WithLabelValues(name, string(s))
	}
	for _, s := range steps {
		m.setAside.WithLabelValues(name, string(s))
	}
}

// forget drops the up gauge of a removed source; its counters stay, as
// counters do.
func (m *Metrics) forget(name string) {
	if m != nil {
		m.sourceUp.DeleteLabelValues(name)
	}
}

// watchLedger makes each scrape count the drops in flight in store.
func (m *Metrics) watchLedger(store ledger.Store) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.store = store
	m.mu.Unlock()
}

func (m *Metrics) finished(e *ledger.Entry) {
	if m == nil {
		return
	}
	m.drops.WithLabelValues(e.Source, string(e.State)).Inc()
	if e.State == ledger.Done {
		m.records.WithLabelValues(e.Source).Add(float64(e.Records))
	}
	var first time.Time
	for _, p := range e.Parts {
		if !p.SubmittedAt.IsZero() && (first.IsZero() || p.SubmittedAt.Before(first)) {
			first = p.SubmittedAt
		}
	}
	if !first.IsZero() && (e.State == ledger.Done || e.State == ledger.Failed) {
		m.imports.Observe(time.Since(first).Seconds())
	}
}

func (m *Metrics) converted(d time.Duration) {
	if m != nil {
		m.conversion.Observe(d.Seconds())
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

// zuoraRequest counts one request to Zuora.
func (m *Metrics) zuoraRequest(op, code string) {
	if m != nil {
		m.zuora.WithLabelValues(op, code).Inc()
	}
}

// ledgerCollector reads the drops in flight from the ledger at each
// scrape, so the gauges are what the ledger says, not a count kept
// beside it.
type ledgerCollector Metrics

func (c *ledgerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- dropsDesc
	ch <- oldestDesc
}

func (c *ledgerCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	store := c.store
	c.mu.Unlock()
	counts := map[ledger.State]int{}
	oldest := 0.0
	if store != nil {
		active, err := store.Active()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(dropsDesc, err)
			return
		}
		for _, e := range active {
			counts[e.State]++
			oldest = max(oldest, time.Since(e.Created).Seconds())
		}
	}
	for _, s := range dropStates {
		ch <- prometheus.MustNewConstMetric(dropsDesc, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, oldest)
}
