package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ib/internal/apiclient"
	"ib/internal/auth"
	"ib/internal/backup"
	"ib/internal/httpapi"
	"ib/internal/ibtest"
	"ib/internal/manifest"
)

// FuzzRange: whatever the Range header, a file answers 200 with the whole
// file, 206 with exactly the bytes its Content-Range names, or 416; never
// an error of the server, never a panic (the handler runs in the fuzzer's
// own goroutine here: a panic fails the target).
func FuzzRange(f *testing.F) {
	srv := ibtest.StartServer(f)
	src := f.TempDir()
	var data bytes.Buffer
	for data.Len() < 3<<20+5000 {
		fmt.Fprintf(&data, "line %d of a log that compresses\n", data.Len())
		data.Write(ibtest.RandomBytes(200))
	}
	ibtest.WriteFile(f, filepath.Join(src, "f"), data.Bytes(), 0o644, time.Unix(1700000000, 0))
	api, _ := apiclient.New(srv.URL, srv.Token)
	res, err := backup.Run(context.Background(), api, src, backup.Options{Tags: manifest.Tags{"n": "f"}, BlockSize: 1 << 20, IsNotFound: apiclient.IsNotFound})
	if err != nil {
		f.Fatal(err)
	}
	set, _ := auth.NewSet("t", nil)
	h, err := httpapi.New(httpapi.Config{Store: srv.Store, Tokens: set, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	url := fmt.Sprintf("/api/v1/backups/%d/files/f", res.ID)
	for _, r := range []string{"bytes=0-0", "bytes=-1", "bytes=1048570-1048580", "bytes=5-1,7-9", "bytes=0-", "bytes=99999999-", "bytes=-0", "items=0-1", strings.Repeat("bytes=1-2,", 50)} {
		f.Add(r)
	}
	whole := data.Bytes()
	f.Fuzz(func(t *testing.T, rng string) {
		req := httptest.NewRequest("GET", url, nil)
		req.Header.Set("Range", rng)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		body := w.Body.Bytes()
		switch w.Code {
		case http.StatusOK:
			if !bytes.Equal(body, whole) {
				t.Fatalf("Range %q: 200 with %d bytes", rng, len(body))
			}
		case http.StatusPartialContent:
			var a, b, size int64
			if _, err := fmt.Sscanf(w.Header().Get("Content-Range"), "bytes %d-%d/%d", &a, &b, &size); err != nil || size != int64(len(whole)) {
				t.Fatalf("Range %q: 206 with Content-Range %q", rng, w.Header().Get("Content-Range"))
			}
			if !bytes.Equal(body, whole[a:b+1]) {
				t.Fatalf("Range %q: 206 %d-%d with other bytes", rng, a, b)
			}
		case http.StatusRequestedRangeNotSatisfiable:
		default:
			t.Fatalf("Range %q: %d %s", rng, w.Code, body)
		}
	})
}
