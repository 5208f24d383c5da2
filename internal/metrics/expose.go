package metrics

import (
	"bufio"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// ContentType is the media type of the text exposition format 0.0.4.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// WriteTo writes every family that has a series, sorted by name, each
// family's series sorted by label values, in the text format 0.0.4.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	fams := make([]*family, 0, len(r.families))
	for _, f := range r.families {
		fams = append(fams, f)
	}
	r.mu.Unlock()
	slices.SortFunc(fams, func(a, b *family) int { return strings.Compare(a.name, b.name) })

	cw := &countWriter{w: w}
	bw := bufio.NewWriter(cw)
	for _, f := range fams {
		f.write(bw)
	}
	err := bw.Flush()
	return cw.n, err
}

// ServeHTTP writes the registry in the text format.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Cache-Control", "no-store")
	if req.Method == http.MethodHead {
		return
	}
	r.WriteTo(w)
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (f *family) write(w *bufio.Writer) {
	f.mu.RLock()
	ss := make([]*series, 0, len(f.series))
	for _, s := range f.series {
		ss = append(ss, s)
	}
	fns := make([]func() float64, len(ss))
	f.mu.RUnlock()
	if len(ss) == 0 {
		return
	}
	slices.SortFunc(ss, func(a, b *series) int { return slices.Compare(a.values, b.values) })
	f.mu.RLock()
	for i, s := range ss {
		fns[i] = s.fn
	}
	f.mu.RUnlock()

	w.WriteString("# HELP ")
	w.WriteString(f.name)
	w.WriteByte(' ')
	w.WriteString(escapeHelp(f.help))
	w.WriteString("\n# TYPE ")
	w.WriteString(f.name)
	w.WriteByte(' ')
	w.WriteString(f.kind.String())
	w.WriteByte('\n')
	for i, s := range ss {
		switch {
		case fns[i] != nil:
			f.sample(w, "", s.values, "", fns[i]())
		case f.kind == kindCounter:
			f.sample(w, "", s.values, "", float64(s.counter.Value()))
		case f.kind == kindGauge:
			f.sample(w, "", s.values, "", float64(s.gauge.Value()))
		case f.kind == kindHistogram:
			cum, sum := s.hist.snapshot()
			for j, ub := range f.buckets {
				f.sample(w, "_bucket", s.values, formatFloat(ub), float64(cum[j]))
			}
			total := float64(cum[len(cum)-1])
			f.sample(w, "_bucket", s.values, "+Inf", total)
			f.sample(w, "_sum", s.values, "", sum)
			f.sample(w, "_count", s.values, "", total)
		}
	}
}

// sample writes one line: name+suffix{labels[,le]} value.
func (f *family) sample(w *bufio.Writer, suffix string, values []string, le string, v float64) {
	w.WriteString(f.name)
	w.WriteString(suffix)
	if len(values) > 0 || le != "" {
		w.WriteByte('{')
		for i, l := range f.labels {
			if i > 0 {
				w.WriteByte(',')
			}
			w.WriteString(l)
			w.WriteString(`="`)
			w.WriteString(escapeLabel(values[i]))
			w.WriteByte('"')
		}
		if le != "" {
			if len(values) > 0 {
				w.WriteByte(',')
			}
			w.WriteString(`le="`)
			w.WriteString(le)
			w.WriteByte('"')
		}
		w.WriteByte('}')
	}
	w.WriteByte(' ')
	w.WriteString(formatFloat(v))
	w.WriteByte('\n')
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// Text format 0.0.4: HELP escapes backslash and newline; label values
// also escape the double quote.
var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
func escapeLabel(s string) string { return labelEscaper.Replace(s) }
