package metrics

import (
	"testing"
	"time"
)

func BenchmarkCounterInc(b *testing.B) {
	c := NewRegistry().Counter("c_total", "x", "proto").With("imap")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Inc()
		}
	})
}

func BenchmarkHistogramObserve(b *testing.B) {
	h := NewRegistry().Histogram("h_seconds", "x", DurationBuckets, "proto").With("imap")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.Observe(0.003)
		}
	})
}

func BenchmarkWith(b *testing.B) {
	v := NewRegistry().Counter("c_total", "x", "proto", "command")
	v.With("imap", "FETCH")
	b.ReportAllocs()
	for b.Loop() {
		v.With("imap", "FETCH").Inc()
	}
}

// BenchmarkProtoCommand is what a server pays per command.
func BenchmarkProtoCommand(b *testing.B) {
	p := NewServer(NewRegistry()).Proto("imap")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p.Command("FETCH", 2*time.Millisecond)
		}
	})
}
