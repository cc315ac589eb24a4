package prom_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/idemkv/prom"
)

// BenchmarkObserve is what operating a store costs on the happy path: an
// exactly-once counter add from parallel goroutines on the in-memory
// engine, with no logger or metrics, with the Prometheus adapter, and with
// both it and an enabled info-level logger (which logs nothing on the
// happy path). Compare the ns/op of the three.
//
//	go test ./idemkv/prom -run '^$' -bench Observe -benchtime 20000x -count 5
func BenchmarkObserve(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts func() *idemkv.Options
	}{
		{"none", func() *idemkv.Options { return &idemkv.Options{} }},
		{"prom", func() *idemkv.Options {
			m, err := prom.New(prometheus.NewRegistry(), nil)
			if err != nil {
				b.Fatal(err)
			}
			return &idemkv.Options{Metrics: m}
		}},
		{"prom+log", func() *idemkv.Options {
			m, err := prom.New(prometheus.NewRegistry(), nil)
			if err != nil {
				b.Fatal(err)
			}
			return &idemkv.Options{Metrics: m, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))}
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			o := bc.opts()
			o.NoJanitor = true
			s, err := idemkv.Open(ctx, "mem:", o)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			c := s.Counter("n")
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := c.Add(ctx, 1); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
