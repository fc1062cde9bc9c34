package apiclient_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"ib/internal/apiclient"
)

// Finding 10: a hostile server's endless manifest is refused once it passes
// the largest manifest a server accepts, not written until the disk fills.
func TestSpoolManifestIsBounded(t *testing.T) {
	defer apiclient.SetMaxManifest(1 << 20)()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"id":1,"tags":{},"entries":[`))
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()
	api, err := apiclient.New("http://"+ln.Addr().String(), "")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "spool"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = apiclient.SpoolManifest(context.Background(), api, 1, f)
	if !errors.Is(err, apiclient.ErrManifestTooLarge) {
		t.Fatalf("endless manifest: %v, want ErrManifestTooLarge", err)
	}
	if fi, _ := f.Stat(); fi.Size() > 1<<20+1 {
		t.Fatalf("spooled %d bytes of it", fi.Size())
	}
}
