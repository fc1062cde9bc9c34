package shaper

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// Through the proxy, a request takes at least its round trip, a body
// arrives whole and in order, and the rate caps it (lower bounds only: a
// slow machine makes them longer).
func TestProxy(t *testing.T) {
	payload := make([]byte, 1<<20)
	rand.Read(payload)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/echo" {
			io.Copy(w, r.Body)
			return
		}
		w.Write(payload)
	}))
	defer srv.Close()
	p, err := Listen("127.0.0.1:0", srv.Listener.Addr().String(), 60*time.Millisecond, 1<<20) // 60 ms, 1 MiB/s
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	base := "http://" + p.Addr()

	start := time.Now()
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, payload) {
		t.Fatalf("body of %d bytes differs from the %d sent", len(got), len(payload))
	}
	if took := time.Since(start); took < 900*time.Millisecond {
		t.Fatalf("1 MiB over a 1 MiB/s link in %s", took)
	}
	// A small request on the open connection: one round trip at least.
	start = time.Now()
	resp, err = http.Post(base+"/echo", "text/plain", bytes.NewReader([]byte("ping")))
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != "ping" {
		t.Fatalf("echo %q", got)
	}
	if took := time.Since(start); took < 60*time.Millisecond {
		t.Fatalf("a round trip over a 60 ms link in %s", took)
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]int64{"1Gbit": 125_000_000, "100Mbit": 12_500_000, "0": 0, "2.5Gbit": 312_500_000} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"fast", "-1Mbit", "10MB"} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) took it", bad)
		}
	}
}
