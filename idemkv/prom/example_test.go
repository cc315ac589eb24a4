package prom_test

import (
	"context"
	"fmt"
	"log"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/idemkv/prom"
	"github.com/idemkv/idemkv/kv"
)

// A store whose metrics a Prometheus registry serves (mount
// promhttp.HandlerFor(reg, ...) on /metrics).
func ExampleNew() {
	reg := prometheus.NewRegistry()
	m, err := prom.New(reg, nil)
	if err != nil {
		log.Fatal(err)
	}
	s, err := idemkv.Open(context.Background(), "mem:", &idemkv.Options{Metrics: m, NoJanitor: true})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	_, err = idemkv.Transact(context.Background(), s, func(tr kv.Transaction) (struct{}, error) {
		tr.Set([]byte("greeting"), []byte("hello"))
		return struct{}{}, nil
	})
	if err != nil {
		log.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "idemkv_calls_total" {
			continue
		}
		for _, c := range f.GetMetric() {
			fmt.Printf("%s{outcome=%q} %v\n", f.GetName(), c.GetLabel()[0].GetValue(), c.GetCounter().GetValue())
		}
	}
	// Output:
	// idemkv_calls_total{outcome="committed"} 1
	// idemkv_calls_total{outcome="failed"} 0
	// idemkv_calls_total{outcome="outcome_lost"} 0
	// idemkv_calls_total{outcome="unknown"} 0
}
