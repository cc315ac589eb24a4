package idemhttp_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/idemkv/idemhttp"
)

func ExampleMiddleware_Transact() {
	ctx := context.Background()
	s, err := idemkv.Open(ctx, "mem:", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	m, err := idemhttp.New(s, &idemhttp.Options{Required: true})
	if err != nil {
		log.Fatal(err)
	}
	orders := s.Counter("orders")
	// The handler's effect is written in the request's keyed transaction:
	// it commits with the stored response, once.
	create := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr, _ := idemhttp.Tx(r.Context())
		orders.AddTx(tr, 1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"order":"created"}`)
	})
	srv := httptest.NewServer(m.Transact(create))
	defer srv.Close()

	send := func(key, body string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/orders", strings.NewReader(body))
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Println(resp.StatusCode, resp.Header.Get("Idempotent-Replayed"), resp.Header.Get("Content-Type"), strings.Contains(string(b), "created"))
	}
	send(`"order-1"`, `{"item":"book"}`) // runs
	send(`"order-1"`, `{"item":"book"}`) // replays
	send(`"order-1"`, `{"item":"pen"}`)  // reused key: 422
	send("", `{"item":"pen"}`)           // missing key: 400
	n, _ := orders.Get(ctx)
	fmt.Println("orders:", n)
	// Output:
	// 201  application/json true
	// 201 true application/json true
	// 422  application/problem+json false
	// 400  application/problem+json false
	// orders: 1
}
