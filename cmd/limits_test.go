package cmd_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ib/internal/ibtest"
)

// TestTransferLimits: --limit-upload and --limit-download cap a backup's
// and a restore's bytes per second (a lower bound on their time: a slow
// machine only makes it longer), the client config's limits apply without
// flags, and a bad rate is refused before the server is asked anything.
func TestTransferLimits(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	src := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, "blob"), ibtest.RandomBytes(1<<20), 0o644, time.Unix(1_700_000_000, 0))

	if _, errs, code := ib(t, conf, "backup", "create", "--node=l", "--limit-upload", "fast", src); code != 2 || !strings.Contains(errs, "--limit-upload") {
		t.Fatalf("--limit-upload fast: exit %d %s", code, errs)
	}
	start := time.Now()
	mustIB(t, conf, "backup", "create", "-q", "--node=l", "--limit-upload", "512KiB", src)
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Fatalf("1 MiB of random bytes uploaded at 512 KiB/s in %s", took)
	}
	// The config's limit_download, without a flag.
	cfg, _ := os.ReadFile(filepath.Join(conf, "config.toml"))
	os.WriteFile(filepath.Join(conf, "config.toml"), append([]byte("limit_download = \"512KiB/s\"\n"), cfg...), 0o600)
	start = time.Now()
	mustIB(t, conf, "backup", "restore", "latest", "--node=l", filepath.Join(t.TempDir(), "dst"), "-q")
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Fatalf("1 MiB restored at 512 KiB/s in %s", took)
	}
	os.WriteFile(filepath.Join(conf, "config.toml"), append([]byte("limit_download = \"lots\"\n"), cfg...), 0o600)
	if _, errs, code := ib(t, conf, "backup", "list"); code != 2 || !strings.Contains(errs, "limit_download") {
		t.Fatalf("a bad limit_download: exit %d %s", code, errs)
	}
}
