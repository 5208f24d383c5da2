package metrics

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
)

// MaxSeries is the most label sets one family holds; later ones are
// counted in a shared series labelled "overflow".
const MaxSeries = 2000

// overflowValue labels the shared series of a full family.
const overflowValue = "overflow"

var (
	nameRE  = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// Registry holds metric families and writes them in the Prometheus text
// format. The zero value is not usable; call NewRegistry.
type Registry struct {
	mu       sync.Mutex
	families map[string]*family // guarded by mu
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{families: map[string]*family{}}
}

type kind int

const (
	kindCounter kind = iota
	kindGauge
	kindHistogram
)

func (k kind) String() string {
	return [...]string{"counter", "gauge", "histogram"}[k]
}

// family is one metric name with its fixed label names and its series.
type family struct {
	name    string
	help    string
	kind    kind
	labels  []string
	buckets []float64 // histograms: upper bounds, ascending, without +Inf

	mu     sync.RWMutex
	series map[string]*series // key: label values joined by 0xff; guarded by mu
}

// series is one label-value combination. Exactly one of the value fields
// is used, by kind; fn, when set, replaces the stored value.
type series struct {
	values  []string
	counter Counter
	gauge   Gauge
	hist    *Histogram
	fn      func() float64
}

// register adds a family or panics: a bad name or a duplicate is a
// programming error found at start-up.
func (r *Registry) register(name, help string, k kind, buckets []float64, labels []string) *family {
	if !nameRE.MatchString(name) {
		panic(fmt.Sprintf("metrics: invalid metric name %q", name))
	}
	seen := map[string]bool{}
	for _, l := range labels {
		if !labelRE.MatchString(l) || strings.HasPrefix(l, "__") || seen[l] || (k == kindHistogram && l == "le") {
			panic(fmt.Sprintf("metrics: invalid or duplicate label name %q for %s", l, name))
		}
		seen[l] = true
	}
	f := &family{
		name:    name,
		help:    help,
		kind:    k,
		labels:  slices.Clone(labels),
		buckets: buckets,
		series:  map[string]*series{},
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.families[name]; dup {
		panic(fmt.Sprintf("metrics: %s registered twice", name))
	}
	r.families[name] = f
	if len(labels) == 0 {
		f.get(nil) // a metric without labels is exported from the start
	}
	return f
}

// get returns the series for values, creating it on first use.
func (f *family) get(values []string) *series {
	if len(values) != len(f.labels) {
		panic(fmt.Sprintf("metrics: %s takes %d label values (%s), got %d", f.name, len(f.labels), strings.Join(f.labels, ","), len(values)))
	}
	var buf [128]byte
	key := appendKey(buf[:0], values)
	f.mu.RLock()
	s := f.series[string(key)] // no allocation for the lookup
	f.mu.RUnlock()
	if s != nil {
		return s
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.series[string(key)]; s != nil {
		return s
	}
	if len(f.series) >= MaxSeries {
		values = make([]string, len(f.labels))
		for i := range values {
			values[i] = overflowValue
		}
		key = appendKey(buf[:0], values)
		if s := f.series[string(key)]; s != nil {
			return s
		}
	}
	s = &series{values: slices.Clone(values)}
	if f.kind == kindHistogram {
		s.hist = newHistogram(f.buckets)
	}
	f.series[string(key)] = s
	return s
}

func appendKey(b []byte, values []string) []byte {
	for i, v := range values {
		if i > 0 {
			b = append(b, 0xff)
		}
		b = append(b, v...)
	}
	return b
}

// CounterVec is a counter family. Register with Registry.Counter.
type CounterVec struct{ f *family }

// Counter registers a counter family. It panics on an invalid or
// duplicate name; names of counters end in _total by convention.
func (r *Registry) Counter(name, help string, labels ...string) *CounterVec {
	return &CounterVec{r.register(name, help, kindCounter, nil, labels)}
}

// With returns the counter for the label values, in the order of the
// label names. It panics if the number of values is wrong. Cache the
// result on hot paths.
func (v *CounterVec) With(values ...string) *Counter { return &v.f.get(values).counter }

// Func makes the series for values read its value from fn at scrape time,
// for counters kept elsewhere (imapd.Server.Panics, auth.Verifier.Metrics).
// fn must be safe for concurrent use and never decrease.
func (v *CounterVec) Func(fn func() uint64, values ...string) {
	s := v.f.get(values)
	v.f.mu.Lock()
	s.fn = func() float64 { return float64(fn()) }
	v.f.mu.Unlock()
}

// GaugeVec is a gauge family. Register with Registry.Gauge.
type GaugeVec struct{ f *family }

// Gauge registers a gauge family. It panics on an invalid or duplicate name.
func (r *Registry) Gauge(name, help string, labels ...string) *GaugeVec {
	return &GaugeVec{r.register(name, help, kindGauge, nil, labels)}
}

// With returns the gauge for the label values; see CounterVec.With.
func (v *GaugeVec) With(values ...string) *Gauge { return &v.f.get(values).gauge }

// Func makes the series for values read its value from fn at scrape time.
// fn must be safe for concurrent use.
func (v *GaugeVec) Func(fn func() int64, values ...string) {
	s := v.f.get(values)
	v.f.mu.Lock()
	s.fn = func() float64 { return float64(fn()) }
	v.f.mu.Unlock()
}

// HistogramVec is a histogram family. Register with Registry.Histogram.
type HistogramVec struct{ f *family }

// Histogram registers a histogram family with the given bucket upper
// bounds (ascending, finite; +Inf is implicit). It panics on an invalid
// or duplicate name or bad buckets.
func (r *Registry) Histogram(name, help string, buckets []float64, labels ...string) *HistogramVec {
	if len(buckets) == 0 || !sort.Float64sAreSorted(buckets) {
		panic(fmt.Sprintf("metrics: %s needs ascending buckets", name))
	}
	for i, b := range buckets {
		if math.IsNaN(b) || math.IsInf(b, 0) || (i > 0 && b == buckets[i-1]) {
			panic(fmt.Sprintf("metrics: %s: bad bucket %v", name, b))
		}
	}
	return &HistogramVec{r.register(name, help, kindHistogram, slices.Clone(buckets), labels)}
}

// With returns the histogram for the label values; see CounterVec.With.
func (v *HistogramVec) With(values ...string) *Histogram { return v.f.get(values).hist }

// ExponentialBuckets returns count bounds start, start*factor, ...
func ExponentialBuckets(start, factor float64, count int) []float64 {
	b := make([]float64, count)
	for i := range b {
		b[i] = start
		start *= factor
	}
	return b
}
