package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ib/internal/apiclient"
	"ib/internal/backup"
	"ib/internal/blockstore"
	"ib/internal/ibtest"
	"ib/internal/manifest"
	"ib/internal/server"
)

// oneFile backs up one file of size random bytes and returns the backup id.
func oneFile(t *testing.T, srv *ibtest.Server, size int) int64 {
	t.Helper()
	src := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, "f"), ibtest.RandomBytes(size), 0o644, time.Unix(1700000000, 0))
	api, err := apiclient.New(srv.URL, srv.Token)
	if err != nil {
		t.Fatal(err)
	}
	res, err := backup.Run(context.Background(), api, src, backup.Options{Tags: manifest.Tags{"node": "t"}, IsNotFound: apiclient.IsNotFound})
	if err != nil {
		t.Fatal(err)
	}
	return res.ID
}

// A client that stops reading is cut after the write idle timeout; one that
// reads slowly but keeps reading gets the whole body.
func TestWriteIdleTimeout(t *testing.T) {
	srv := ibtest.StartServer(t, func(o *server.Options) { o.WriteIdleTimeout = time.Second })
	const size = 16 << 20
	id := oneFile(t, srv, size)
	get := func() (net.Conn, *bufio.Reader, int64) {
		conn, err := net.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.(*net.TCPConn).SetReadBuffer(64 << 10)
		fmt.Fprintf(conn, "GET /api/v1/backups/%d/files/f HTTP/1.1\r\nHost: x\r\n\r\n", id)
		br := bufio.NewReaderSize(conn, 64<<10)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET: %v %v", resp, err)
		}
		return conn, br, resp.ContentLength
	}

	conn, br, _ := get()
	time.Sleep(3 * time.Second) // stops reading: the server's writes block
	n, err := io.Copy(io.Discard, br)
	conn.Close()
	if err == nil && n >= size {
		t.Fatalf("a client that stopped reading for 3 s got the whole body (%d bytes)", n)
	}

	conn, br, length := get()
	defer conn.Close()
	var got int64
	buf := make([]byte, 256<<10)
	for got < length {
		m, err := io.ReadFull(br, buf[:min(int64(len(buf)), length-got)])
		got += int64(m)
		if err != nil {
			t.Fatalf("a slow but moving client was cut after %d of %d bytes: %v", got, length, err)
		}
		time.Sleep(60 * time.Millisecond) // about 4 MiB/s
	}
}

// A 5xx answer carries a stable message and a request id, never the
// error's own text; the log line has both.
func TestServerErrorsDoNotLeak(t *testing.T) {
	var faulty *blockstore.Faulty
	logs := &ibtest.SyncBuffer{}
	srv := ibtest.StartServer(t, func(o *server.Options) {
		o.Log = slog.New(slog.NewJSONHandler(logs, nil))
		o.WrapBlocks = func(s blockstore.Store) blockstore.Store { faulty = blockstore.NewFaulty(s); return faulty }
	})
	id := oneFile(t, srv, 1<<20)
	faulty.SetFaults(blockstore.Fault{Op: blockstore.OpGet, N: faulty.Calls(blockstore.OpGet) + 1, Times: 100, Fail: true})
	mresp, err := http.Get(fmt.Sprintf("%s/api/v1/backups/%d/manifest", srv.URL, id))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Entries []struct {
			Blocks []struct{ CID string }
		}
	}
	json.NewDecoder(mresp.Body).Decode(&m)
	mresp.Body.Close()
	if len(m.Entries) != 2 || len(m.Entries[1].Blocks) != 1 {
		t.Fatalf("manifest: %+v", m)
	}
	resp, err := http.Get(srv.URL + "/api/v1/blocks/" + m.Entries[1].Blocks[0].CID)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e struct {
		Error     string `json:"error"`
		RequestID string `json:"request_id"`
	}
	json.Unmarshal(body, &e)
	if resp.StatusCode != 503 || e.RequestID == "" || resp.Header.Get("X-Request-Id") != e.RequestID {
		t.Fatalf("%d %s (X-Request-Id %q), want 503 with a request id", resp.StatusCode, body, resp.Header.Get("X-Request-Id"))
	}
	if strings.Contains(string(body), "injected") || strings.Contains(string(body), srv.DataDir) || strings.Contains(string(body), "bafk") {
		t.Errorf("the 503 body leaks the error: %s", body)
	}
	var found bool
	for line := range strings.SplitSeq(logs.String(), "\n") {
		if strings.Contains(line, e.RequestID) && strings.Contains(line, "injected") {
			found = true
		}
	}
	if !found {
		t.Errorf("no log line with request id %s and the error:\n%s", e.RequestID, logs)
	}
}

// A failure in the middle of a pack of blocks (POST /blocks/fetch) cuts the
// connection without a panic: the client gets a short body, and the
// server answers the next request.
func TestPackCutMidBody(t *testing.T) {
	var faulty *blockstore.Faulty
	srv := ibtest.StartServer(t, func(o *server.Options) {
		o.WrapBlocks = func(s blockstore.Store) blockstore.Store { faulty = blockstore.NewFaulty(s); return faulty }
	})
	src := t.TempDir()
	for _, name := range []string{"a", "b"} {
		ibtest.WriteFile(t, filepath.Join(src, name), ibtest.RandomBytes(600<<10), 0o644, time.Unix(1700000000, 0))
	}
	api, _ := apiclient.New(srv.URL, srv.Token)
	res, err := backup.Run(context.Background(), api, src, backup.Options{Tags: manifest.Tags{"node": "p"}, IsNotFound: apiclient.IsNotFound})
	if err != nil {
		t.Fatal(err)
	}
	mresp, err := http.Get(fmt.Sprintf("%s/api/v1/backups/%d/manifest", srv.URL, res.ID))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Entries []struct {
			Blocks []struct{ CID string }
		}
	}
	json.NewDecoder(mresp.Body).Decode(&m)
	mresp.Body.Close()
	var cids []string
	for _, e := range m.Entries {
		for _, b := range e.Blocks {
			cids = append(cids, `"`+b.CID+`"`)
		}
	}
	if len(cids) != 2 {
		t.Fatalf("want 2 blocks, got %v", cids)
	}
	faulty.SetFaults(blockstore.Fault{Op: blockstore.OpGet, N: faulty.Calls(blockstore.OpGet) + 2, Fail: true})
	resp, err := http.Post(srv.URL+"/api/v1/blocks/fetch", "application/json", strings.NewReader(`{"cids":[`+strings.Join(cids, ",")+`]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || rerr == nil {
		t.Fatalf("a pack whose second block failed: %d, %d bytes, read error %v; want 200 and a cut body", resp.StatusCode, len(body), rerr)
	}
	if h, err := http.Get(srv.URL + "/healthz"); err != nil || h.StatusCode != 200 {
		t.Fatalf("server after a cut pack: %v", err)
	}
}
