package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"ib/internal/block"
	"ib/internal/ibtest"
)

func do(t *testing.T, method, url, token string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func stats(t *testing.T, srv *ibtest.Server) (backups, blocks int64) {
	t.Helper()
	s := srv.Store.Stats()
	return s.Backups, s.Blocks
}

func TestAuth(t *testing.T) {
	srv := ibtest.StartServer(t)
	data := []byte("hello world")
	c := block.Sum(data).String()
	wire, _ := block.Encode(data, block.DefaultLevel)
	writes := []struct {
		method, path string
		body         []byte
	}{
		{"POST", "/api/v1/blocks/missing", []byte(`{"cids":[]}`)},
		{"PUT", "/api/v1/blocks/" + c, wire},
		{"POST", "/api/v1/blocks", block.AppendFrame(nil, c, wire)},
		{"POST", "/api/v1/backups", []byte(`{"tags":{},"entries":[]}`)},
		{"DELETE", "/api/v1/backups/1", nil},
	}
	for _, w := range writes {
		for _, tok := range []string{"", "wrong-token", srv.Token + "x", srv.Token[:5]} {
			status, body := do(t, w.method, srv.URL+w.path, tok, w.body)
			if status != http.StatusUnauthorized || !strings.Contains(body, `"error"`) {
				t.Errorf("%s %s with token %q: %d %s, want 401 with a JSON error", w.method, w.path, tok, status, body)
			}
		}
	}
	if b, bl := stats(t, srv); b != 0 || bl != 0 {
		t.Fatalf("refused writes stored something: %d backups, %d blocks", b, bl)
	}
	// with the token the block goes in; reads then need none
	if status, body := do(t, "PUT", srv.URL+"/api/v1/blocks/"+c, srv.Token, wire); status != http.StatusNoContent {
		t.Fatalf("PUT with token: %d %s", status, body)
	}
	for _, path := range []string{"/api/v1/blocks/" + c, "/api/v1/backups", "/healthz", "/api/v1/stats"} {
		if status, body := do(t, "GET", srv.URL+path, "", nil); status != http.StatusOK {
			t.Errorf("GET %s without token: %d %s", path, status, body)
		}
	}
	status, body := do(t, "GET", srv.URL+"/api/v1/blocks/"+c, "", nil)
	if status != 200 || body != string(wire) {
		t.Errorf("GET block: %d, %d bytes; want the wire form back", status, len(body))
	}
}

func TestBadBlocks(t *testing.T) {
	srv := ibtest.StartServer(t)
	data := ibtest.RandomBytes(300 << 10)
	wire, _ := block.Encode(data, block.DefaultLevel)
	other := block.Sum([]byte("other")).String()
	bomb, _ := block.Encode(make([]byte, block.MaxSize+1), block.Level{})
	cases := map[string]struct {
		cid  string
		body []byte
	}{
		"forged":        {other, wire},
		"not lz4":       {block.Sum(data).String(), data[:1000]},
		"truncated":     {block.Sum(data).String(), wire[:len(wire)/2]},
		"trailing junk": {block.Sum(data).String(), append(append([]byte{}, wire...), "junk"...)},
		"bad cid":       {"bafy-not-a-cid", wire},
		"bomb":          {block.Sum(make([]byte, block.MaxSize+1)).String(), bomb},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			status, body := do(t, "PUT", srv.URL+"/api/v1/blocks/"+c.cid, srv.Token, c.body)
			if status != http.StatusBadRequest {
				t.Fatalf("%d %s, want 400", status, body)
			}
		})
	}
	if _, bl := stats(t, srv); bl != 0 {
		t.Fatalf("%d blocks stored from bad uploads", bl)
	}
	if ents, _ := os.ReadDir(filepath.Join(srv.DataDir, "blocks", "tmp")); len(ents) != 0 {
		t.Fatalf("bad uploads left %d temp files", len(ents))
	}
}

func TestConcurrentPutsOfOneBlock(t *testing.T) {
	srv := ibtest.StartServer(t)
	for _, size := range []int{1000, 1 << 20} { // inline and in the block store
		data := ibtest.RandomBytes(size)
		c := block.Sum(data).String()
		wire, _ := block.Encode(data, block.DefaultLevel)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if status, body := do(t, "PUT", srv.URL+"/api/v1/blocks/"+c, srv.Token, wire); status != http.StatusNoContent {
					t.Errorf("concurrent PUT: %d %s", status, body)
				}
			})
		}
		wg.Wait()
		status, body := do(t, "GET", srv.URL+"/api/v1/blocks/"+c, "", nil)
		if status != 200 || body != string(wire) {
			t.Fatalf("GET after concurrent puts: %d", status)
		}
	}
	if _, bl := stats(t, srv); bl != 2 {
		t.Fatalf("%d block rows, want 2", bl)
	}
}

// entry is a manifest entry as JSON text.
func entry(path, typ string, extra string) string {
	return fmt.Sprintf(`{"path":%q,"type":%q,"mode":420,"mtime":"2024-01-02T03:04:05.123456789Z"%s}`, path, typ, extra)
}

func commitBody(entries ...string) []byte {
	return []byte(`{"tags":{"node":"t"},"entries":[` + strings.Join(entries, ",") + `]}`)
}

func TestBadManifests(t *testing.T) {
	srv := ibtest.StartServer(t)
	data := []byte("block one")
	c := block.Sum(data).String()
	wire, _ := block.Encode(data, block.DefaultLevel)
	if status, _ := do(t, "PUT", srv.URL+"/api/v1/blocks/"+c, srv.Token, wire); status != http.StatusNoContent {
		t.Fatal("PUT failed")
	}
	file := func(p string) string {
		return entry(p, "file", fmt.Sprintf(`,"size":9,"blocks":[{"cid":%q,"size":9}]`, c))
	}
	root := entry(".", "dir", "")
	cases := map[string][]byte{
		"dotdot":          commitBody(root, file("../etc/passwd")),
		"dotdot inside":   commitBody(root, entry("a", "dir", ""), file("a/../../x")),
		"absolute":        commitBody(root, file("/etc/passwd")),
		"duplicate":       commitBody(root, file("a"), file("a")),
		"wrong order":     commitBody(root, file("b"), file("a")),
		"under a symlink": commitBody(root, entry("l", "symlink", `,"target":"/etc"`), file("l/passwd")),
		"under a file":    commitBody(root, file("f"), file("f/x")),
		"unknown type":    commitBody(root, entry("p", "fifo", "")),
		"sizes":           commitBody(root, entry("f", "file", fmt.Sprintf(`,"size":10,"blocks":[{"cid":%q,"size":9}]`, c))),
		"no root":         commitBody(file("f")),
		"bad tag":         []byte(`{"tags":{"Bad Key":"x"},"entries":[` + root + `]}`),
		"not json":        []byte(`{"tags":`),
		"unknown field":   []byte(`{"tags":{},"bogus":1,"entries":[` + root + `]}`),
		"empty":           commitBody(),
		"backslash":       commitBody(root, file(`a\b`)),
		"empty part":      commitBody(root, entry("a", "dir", ""), file("a//b")),
		// the stored block has 9 bytes: a manifest must not say otherwise
		"stored size lie": commitBody(root, entry("f", "file", fmt.Sprintf(`,"size":3,"blocks":[{"cid":%q,"size":3}]`, c))),
		"two sizes of one block": commitBody(root, file("a"), entry("b", "file", fmt.Sprintf(`,"size":18,"blocks":[{"cid":%q,"size":9},{"cid":%q,"size":9}]`, c, c)),
			entry("c", "file", fmt.Sprintf(`,"size":10,"blocks":[{"cid":%q,"size":10}]`, c))),
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			status, resp := do(t, "POST", srv.URL+"/api/v1/backups", srv.Token, body)
			if status != http.StatusBadRequest || !strings.Contains(resp, `"error"`) {
				t.Fatalf("%d %s, want 400 with an error", status, resp)
			}
		})
	}
	if b, _ := stats(t, srv); b != 0 {
		t.Fatalf("%d backups stored from bad manifests", b)
	}

	// A missing block: 409 with its CID, nothing stored.
	absent := block.Sum([]byte("absent")).String()
	status, resp := do(t, "POST", srv.URL+"/api/v1/backups", srv.Token,
		commitBody(root, entry("f", "file", fmt.Sprintf(`,"size":6,"blocks":[{"cid":%q,"size":6}]`, absent))))
	var conflict struct{ Missing []string }
	json.Unmarshal([]byte(resp), &conflict)
	if status != http.StatusConflict || len(conflict.Missing) != 1 || conflict.Missing[0] != absent {
		t.Fatalf("missing block: %d %s", status, resp)
	}
	if b, _ := stats(t, srv); b != 0 {
		t.Fatalf("a refused commit stored a backup")
	}

	// A good one, twice with one idempotency key: one backup.
	good := []byte(`{"tags":{"node":"t"},"idempotency_key":"k1","entries":[` + root + "," + file("a") + `]}`)
	s1, r1 := do(t, "POST", srv.URL+"/api/v1/backups", srv.Token, good)
	s2, r2 := do(t, "POST", srv.URL+"/api/v1/backups", srv.Token, good)
	if s1 != http.StatusCreated || s2 != http.StatusOK || r1 != r2 {
		t.Fatalf("idempotent commit: %d %s, then %d %s", s1, r1, s2, r2)
	}
	if b, _ := stats(t, srv); b != 1 {
		t.Fatalf("%d backups after a retried commit, want 1", b)
	}
	// The answer names the backup and when it was made, as the backup's
	// own record does.
	var ans struct {
		ID        int64     `json:"id"`
		CreatedAt time.Time `json:"created_at"`
	}
	json.Unmarshal([]byte(r1), &ans)
	_, rec := do(t, "GET", fmt.Sprintf("%s/api/v1/backups/%d", srv.URL, ans.ID), "", nil)
	var got struct {
		CreatedAt time.Time `json:"created_at"`
	}
	json.Unmarshal([]byte(rec), &got)
	if ans.ID == 0 || ans.CreatedAt.IsZero() || !ans.CreatedAt.Equal(got.CreatedAt) {
		t.Fatalf("commit answer %s; the backup says created_at %v", r1, got.CreatedAt)
	}
}

func TestNotFoundAndBadIDs(t *testing.T) {
	srv := ibtest.StartServer(t)
	for path, want := range map[string]int{
		"/api/v1/backups/42":          404,
		"/api/v1/backups/42/manifest": 404,
		"/api/v1/backups/abc":         400,
		"/api/v1/backups/-1":          400,
		"/api/v1/backups/latest":      404,
		"/api/v1/backups?Bad=1":       400,
		"/api/v1/blocks/nope":         400,
		"/api/v1/nothing":             404,
	} {
		if status, body := do(t, "GET", srv.URL+path, "", nil); status != want || !strings.Contains(body, `"error"`) {
			t.Errorf("GET %s: %d %s, want %d", path, status, body, want)
		}
	}
}

func TestPacks(t *testing.T) {
	srv := ibtest.StartServer(t)
	var pack []byte
	var cids []string
	for i := range 50 {
		data := ibtest.RandomBytes(100 + i)
		c := block.Sum(data).String()
		wire, _ := block.Encode(data, block.DefaultLevel)
		pack = block.AppendFrame(pack, c, wire)
		cids = append(cids, c)
	}
	if status, body := do(t, "POST", srv.URL+"/api/v1/blocks", srv.Token, pack); status != 200 || !strings.Contains(body, `"stored":50`) {
		t.Fatalf("pack of 50: %d %s", status, body)
	}
	if _, bl := stats(t, srv); bl != 50 {
		t.Fatalf("%d blocks after a pack of 50", bl)
	}
	// a forged block inside a pack: 400 naming it, and it is not stored
	good := ibtest.RandomBytes(300)
	gw, _ := block.Encode(good, block.DefaultLevel)
	forged := block.Sum([]byte("something else")).String()
	bad := block.AppendFrame(block.AppendFrame(nil, block.Sum(good).String(), gw), forged, gw)
	status, body := do(t, "POST", srv.URL+"/api/v1/blocks", srv.Token, bad)
	if status != 400 || !strings.Contains(body, forged) {
		t.Fatalf("pack with a forged block: %d %s", status, body)
	}
	missing, err := srv.Store.Missing(context.Background(), []string{forged})
	if err != nil || len(missing) != 1 {
		t.Fatalf("the forged block was stored: %v %v", missing, err)
	}
	// cut packs and junk
	for name, p := range map[string][]byte{
		"cut in a wire form": pack[:len(pack)-7],
		"cut in a header":    append(append([]byte{}, pack...), 59),
		"junk":               []byte("not a pack at all"),
	} {
		if status, body := do(t, "POST", srv.URL+"/api/v1/blocks", srv.Token, p); status != 400 {
			t.Errorf("%s: %d %s, want 400", name, status, body)
		}
	}
}

// TestFetchBlocks: many blocks in one pack, in the order asked, inline and
// block-store ones alike, public like GET /blocks/{cid}; bad requests are
// 400 and a missing block is 404 naming it, with no partial answer.
func TestFetchBlocks(t *testing.T) {
	srv := ibtest.StartServer(t)
	var datas [][]byte
	var cids []string
	for _, size := range []int{10, 1000, 300_000, 5} { // 300 KB: block store, not inline
		data := ibtest.RandomBytes(size)
		c := block.Sum(data).String()
		wire, _ := block.Encode(data, block.DefaultLevel)
		if status, body := do(t, "PUT", srv.URL+"/api/v1/blocks/"+c, srv.Token, wire); status != 204 && status != 200 && status != 201 {
			t.Fatalf("put: %d %s", status, body)
		}
		datas = append(datas, data)
		cids = append(cids, c)
	}
	ask := []int{3, 0, 2, 1, 0} // any order, repeats allowed
	var req []string
	for _, i := range ask {
		req = append(req, cids[i])
	}
	body, _ := json.Marshal(map[string][]string{"cids": req})
	status, pack := do(t, "POST", srv.URL+"/api/v1/blocks/fetch", "", body)
	if status != 200 {
		t.Fatalf("fetch: %d %s", status, pack)
	}
	br := bufio.NewReader(strings.NewReader(pack))
	for _, i := range ask {
		c, n, err := block.ReadFrameHeader(br, 1<<20)
		if err != nil || c != cids[i] {
			t.Fatalf("frame for %s: got %s, %v", cids[i], c, err)
		}
		var out bytes.Buffer
		if _, err := block.Verify(io.LimitReader(br, n), block.Sum(datas[i]), block.MaxSize, &out); err != nil || !bytes.Equal(out.Bytes(), datas[i]) {
			t.Fatalf("block %d: %v", i, err)
		}
	}
	if _, _, err := block.ReadFrameHeader(br, 1<<20); err != io.EOF {
		t.Fatalf("pack goes on after the blocks asked: %v", err)
	}

	absent := block.Sum([]byte("never stored")).String()
	many := make([]string, 1001)
	for i := range many {
		many[i] = cids[0]
	}
	for name, tc := range map[string]struct {
		body   string
		status int
		says   string
	}{
		"missing block": {`{"cids":["` + cids[0] + `","` + absent + `"]}`, 404, absent},
		"no cids":       {`{"cids":[]}`, 400, "CIDs"},
		"bad cid":       {`{"cids":["bafy-not-a-cid"]}`, 400, "CID"},
		"not json":      {`cids please`, 400, "body"},
		"too many":      {string(must(json.Marshal(map[string][]string{"cids": many}))), 400, "1000"},
	} {
		status, got := do(t, "POST", srv.URL+"/api/v1/blocks/fetch", "", []byte(tc.body))
		if status != tc.status || !strings.Contains(got, tc.says) || !strings.HasPrefix(got, `{"error"`) {
			t.Errorf("%s: %d %s, want %d naming %q", name, status, got, tc.status, tc.says)
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
