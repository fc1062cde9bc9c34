//go:build unix

package cmd_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ib/internal/ibtest"
)

// Issue 17: `restore --force` over a stale copy is a refresh that fetches
// only what changed; --delete removes what the backup does not have,
// sparing ignored, protected and --keep paths.
func TestRefreshStaleDataDir(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	mt := time.Unix(1700000000, 0)
	src := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, ".ibignore"), []byte("node.pid\n"), 0o644, mt)
	ibtest.WriteFile(t, filepath.Join(src, "ancient", "bodies.cdat"), ibtest.RandomBytes(4<<20), 0o644, mt)
	ibtest.WriteFile(t, filepath.Join(src, "config", "priv_validator_key.json"), []byte(`{"key":"v"}`), 0o600, mt)
	mustIB(t, conf, "backup", "create", "-q", "--node=r", "--block-size", "1MiB", src)
	dest := filepath.Join(t.TempDir(), "node")
	mustIB(t, conf, "backup", "restore", "-q", "latest", "--node=r", dest)

	f, _ := os.OpenFile(filepath.Join(src, "ancient", "bodies.cdat"), os.O_WRONLY|os.O_APPEND, 0)
	f.Write(ibtest.RandomBytes(1 << 20))
	f.Close()
	os.Chtimes(filepath.Join(src, "ancient", "bodies.cdat"), mt.Add(time.Hour), mt.Add(time.Hour))
	mustIB(t, conf, "backup", "create", "-q", "--node=r", "--block-size", "1MiB", src)
	ibtest.WriteFile(t, filepath.Join(dest, "node.pid"), []byte("42"), 0o644, mt)
	ibtest.WriteFile(t, filepath.Join(dest, "stale.ldb"), []byte("stale"), 0o644, mt)
	ibtest.WriteFile(t, filepath.Join(dest, "snapshots", "x"), []byte("mine"), 0o644, mt)
	ibtest.WriteFile(t, filepath.Join(dest, "config", "priv_validator_key.json"), []byte(`{"key":"this host"}`), 0o600, mt.Add(time.Hour))

	plan := mustIB(t, conf, "backup", "restore", "--dry-run", "--delete", "--keep", "snapshots/", "--preset", "cosmos", "latest", "--node=r", dest)
	for _, want := range []string{"~ ancient/bodies.cdat (4194304 bytes from DEST, 1048576 fetched)\n", "- stale.ldb\n",
		"1 file patched", "4 blocks from DEST (4.0 MiB), 1 block fetched (1.0 MiB); 1 path deleted"} {
		if !strings.Contains(plan, want) {
			t.Errorf("dry run lacks %q:\n%s", want, plan)
		}
	}
	if _, err := os.Stat(filepath.Join(dest, "stale.ldb")); err != nil {
		t.Fatal("the dry run deleted a file")
	}
	out := mustIB(t, conf, "backup", "restore", "-q", "--json", "--force", "--delete", "--keep", "snapshots/",
		"--preset", "cosmos", "latest", "--node=r", dest)
	var res struct {
		Patched, BlocksReused, BlocksFetched, BytesFetched, Deleted int64
		ProtectedCount                                              int
	}
	if err := json.Unmarshal([]byte(strings.NewReplacer("blocks_reused", "BlocksReused", "blocks_fetched", "BlocksFetched",
		"bytes_fetched", "BytesFetched", "protected_count", "ProtectedCount").Replace(out)), &res); err != nil {
		t.Fatal(err)
	}
	if res.Patched != 1 || res.BlocksReused != 4 || res.BlocksFetched != 1 || res.BytesFetched != 1<<20 || res.Deleted != 1 || res.ProtectedCount != 1 {
		t.Fatalf("refresh: %s", out)
	}
	for p, want := range map[string]string{"node.pid": "42", "snapshots/x": "mine", "config/priv_validator_key.json": `{"key":"this host"}`} {
		if got, _ := os.ReadFile(filepath.Join(dest, p)); string(got) != want {
			t.Errorf("%s: %q, want %q", p, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dest, "stale.ldb")); !os.IsNotExist(err) {
		t.Error("stale.ldb survived --delete")
	}
	want, _ := os.ReadFile(filepath.Join(src, "ancient", "bodies.cdat"))
	if got, _ := os.ReadFile(filepath.Join(dest, "ancient", "bodies.cdat")); string(got) != string(want) {
		t.Error("the refreshed freezer file differs")
	}
	// The plain summary says what the refresh did.
	ibtest.WriteFile(t, filepath.Join(dest, "stale2"), []byte("x"), 0o644, mt)
	line := mustIB(t, conf, "backup", "restore", "-q", "--force", "--delete", "--keep", "snapshots/", "latest", "--node=r", dest)
	if !strings.Contains(line, "kept") || !strings.Contains(line, "1 path deleted") {
		t.Errorf("summary: %q", line)
	}
}
