// Package metrics exposes the server's Prometheus metrics on their own
// registry (never the global one), served on the metrics port only. Gauges
// are read from the store's in-memory totals at scrape time: a scrape never
// touches SQLite.
package metrics

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"ib/internal/api"
	"ib/internal/httpapi"
	"ib/internal/manifest"
	"ib/internal/store"
)

// Source is what the gauges read.
type Source interface {
	Stats() api.Stats
	LastBackups() map[string]time.Time
}

// Metrics holds the collectors.
type Metrics struct {
	reg           *prometheus.Registry
	upload        prometheus.Counter
	download      prometheus.Counter
	requests      *prometheus.HistogramVec
	pruneRuns     *prometheus.CounterVec
	pruneDuration prometheus.Histogram
	gcBlocks      prometheus.Counter
	gcBytes       prometheus.Counter
	blocksStored  prometheus.Counter
	manifests     prometheus.Counter
	scrubbed      prometheus.Counter
	corrupt       prometheus.Counter
}

// Register adds collectors of other parts (the database's connection
// pools) to the registry.
func (m *Metrics) Register(cs ...prometheus.Collector) { m.reg.MustRegister(cs...) }

// New registers every collector on a new registry.
func New(src Source) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		upload: prometheus.NewCounter(prometheus.CounterOpts{Name: "ib_bandwidth_upload_bytes_total",
			Help: "Bytes received in API request bodies (blocks, manifests)."}),
		download: prometheus.NewCounter(prometheus.CounterOpts{Name: "ib_bandwidth_download_bytes_total",
			Help: "Bytes sent in API response bodies (blocks, manifests, files, archives)."}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ib_http_request_duration_seconds",
			Help:    "Duration of HTTP requests by route, method and status.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .2, .5, 1, 5, 30, 120}}, []string{"route", "method", "status"}),
		pruneRuns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ib_prune_runs_total",
			Help: "Retention and garbage collection runs by result."}, []string{"result"}),
		pruneDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ib_prune_duration_seconds",
			Help: "Duration of retention and garbage collection runs.", Buckets: prometheus.ExponentialBuckets(0.01, 4, 10)}),
		gcBlocks: prometheus.NewCounter(prometheus.CounterOpts{Name: "ib_gc_blocks_deleted_total",
			Help: "Blocks removed by garbage collection."}),
		gcBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "ib_gc_bytes_freed_total",
			Help: "Stored bytes freed by garbage collection."}),
		blocksStored: prometheus.NewCounter(prometheus.CounterOpts{Name: "ib_blocks_total",
			Help: "Blocks stored (new block rows) since the server started; ib_blocks is the current count."}),
		manifests: prometheus.NewCounter(prometheus.CounterOpts{Name: "ib_manifests_total",
			Help: "Manifests (backups) committed since the server started; ib_manifests is the current count."}),
		scrubbed: prometheus.NewCounter(prometheus.CounterOpts{Name: "ib_scrub_blocks_total",
			Help: "Blocks re-read and re-hashed by the scrubber."}),
		corrupt: prometheus.NewCounter(prometheus.CounterOpts{Name: "ib_scrub_corrupt_blocks_total",
			Help: "Blocks the scrubber found not matching their CID (marked for re-upload)."}),
	}
	m.reg.MustRegister(m.upload, m.download, m.requests, m.pruneRuns, m.pruneDuration, m.gcBlocks, m.gcBytes,
		m.blocksStored, m.manifests, m.scrubbed, m.corrupt,
		// The scheduler's latencies (go_sched_latencies_seconds): how long
		// runnable goroutines waited for a core, which is where a cheap
		// request's time goes on a server busy with CPU-heavy ones.
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsScheduler)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&gauges{src: src})
	// Both results exist from the start, at 0: an alert on the increase
	// of failed runs sees the first one.
	m.pruneRuns.WithLabelValues("ok")
	m.pruneRuns.WithLabelValues("error")
	return m
}

// Hooks are the store's hooks that feed the counters.
func (m *Metrics) Hooks() store.Hooks {
	return store.Hooks{BlockStored: m.blocksStored.Inc, BackupCommitted: m.manifests.Inc}
}

// Handler serves the exposition.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Middleware times requests and counts the bytes of their bodies.
func (m *Metrics) Middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		body := &countingBody{ReadCloser: c.Request.Body}
		if c.Request.Body != nil {
			c.Request.Body = body
		}
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		m.requests.WithLabelValues(route, c.Request.Method, strconv.Itoa(c.Writer.Status())).Observe(time.Since(start).Seconds())
		m.upload.Add(float64(body.n))
		if n := httpapi.BytesSent(c); n > 0 {
			m.download.Add(float64(n))
		}
	}
}

// PruneDone records one prune run.
func (m *Metrics) PruneDone(rep store.GCReport, took time.Duration, err error) {
	if err != nil {
		m.pruneRuns.WithLabelValues("error").Inc()
		return
	}
	m.pruneRuns.WithLabelValues("ok").Inc()
	m.pruneDuration.Observe(took.Seconds())
	m.gcBlocks.Add(float64(rep.BlocksDeleted + rep.OrphansDeleted))
	m.gcBytes.Add(float64(rep.BytesFreed))
}

// ScrubCorrupt counts one corrupt block.
func (m *Metrics) ScrubCorrupt() { m.corrupt.Inc() }

// ScrubDone counts the blocks of a scrub pass.
func (m *Metrics) ScrubDone(blocks int64) { m.scrubbed.Add(float64(blocks)) }

type countingBody struct {
	io.ReadCloser
	n int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}

// gauges reads the store's totals at scrape time.
type gauges struct{ src Source }

var (
	descBlocks    = prometheus.NewDesc("ib_blocks", "Blocks kept now (inline and offloaded).", nil, nil)
	descManifests = prometheus.NewDesc("ib_manifests", "Backups (manifests) kept now.", nil, nil)
	descStorage   = prometheus.NewDesc("ib_storage_bytes", "Stored bytes of blocks, inline and offloaded (compressed).", nil, nil)
	descByPlace   = prometheus.NewDesc("ib_storage_location_bytes", "Stored bytes of blocks by location.", []string{"location"}, nil)
	descLogical   = prometheus.NewDesc("ib_logical_bytes", "File bytes of all backups, before deduplication.", nil, nil)
	descTagSets   = prometheus.NewDesc("ib_tag_sets", "Tag sets with at least one backup.", nil, nil)
	descLast      = prometheus.NewDesc("ib_last_backup_timestamp_seconds", "Time of the newest backup of each tag set.", []string{"tags"}, nil)
)

func (g *gauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBlocks, descManifests, descStorage, descByPlace, descLogical, descTagSets, descLast} {
		ch <- d
	}
}

func (g *gauges) Collect(ch chan<- prometheus.Metric) {
	st := g.src.Stats()
	ch <- prometheus.MustNewConstMetric(descBlocks, prometheus.GaugeValue, float64(st.Blocks))
	ch <- prometheus.MustNewConstMetric(descManifests, prometheus.GaugeValue, float64(st.Backups))
	ch <- prometheus.MustNewConstMetric(descStorage, prometheus.GaugeValue, float64(st.StoredBytes))
	ch <- prometheus.MustNewConstMetric(descByPlace, prometheus.GaugeValue, float64(st.InlineBytes), "inline")
	ch <- prometheus.MustNewConstMetric(descByPlace, prometheus.GaugeValue, float64(st.OffloadedBytes), "offloaded")
	ch <- prometheus.MustNewConstMetric(descLogical, prometheus.GaugeValue, float64(st.LogicalBytes))
	ch <- prometheus.MustNewConstMetric(descTagSets, prometheus.GaugeValue, float64(st.TagSets))
	for ts, at := range g.src.LastBackups() {
		ch <- prometheus.MustNewConstMetric(descLast, prometheus.GaugeValue, float64(at.UnixNano())/1e9, tagLabel(ts))
	}
}

// tagLabel renders a canonical tag set as "k=v k=v".
func tagLabel(canonical string) string {
	var t manifest.Tags
	if err := json.Unmarshal([]byte(canonical), &t); err != nil {
		return canonical
	}
	return t.String()
}
