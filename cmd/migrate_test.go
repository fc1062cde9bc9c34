//go:build unix

package cmd_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"ib/internal/apiclient"
	"ib/internal/backup"
	"ib/internal/ibtest"
	"ib/internal/manifest"
	"ib/internal/pgtest"
)

// TestMigrateToPostgres: a SQLite server with backups (one deleted) is
// migrated into PostgreSQL with --verify, served from it with the same
// data dir, and restores the same trees; ids go on where they stopped; a
// second migration into the now full database is refused.
func TestMigrateToPostgres(t *testing.T) {
	p := startProc(t, "http")
	ctx := context.Background()
	api, err := apiclient.New(p.URL, p.Token)
	if err != nil {
		t.Fatal(err)
	}
	trees := []string{textTree(t, 30, 200_000), textTree(t, 5, 1<<20)}
	ibtest.WriteFile(t, filepath.Join(trees[1], "random.bin"), ibtest.RandomBytes(2<<20), 0o644, time.Unix(1700000000, 0))
	var ids []int64
	for i, tr := range append(trees, trees[0]) {
		res, err := backup.Run(ctx, api, tr, backup.Options{Tags: manifest.Tags{"node": []string{"a", "b", "a"}[i]}, BlockSize: 256 << 10, IsNotFound: apiclient.IsNotFound})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.ID)
	}
	if err := api.Delete(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.exited
	p.cmd = nil

	pg := pgtest.Start(t)
	dsn := pg.NewDatabase(t)
	dataDir := filepath.Join(p.conf, "data")
	migrate := func() (string, error) {
		out, err := exec.Command(ibBinary, "server", "migrate", "--config", filepath.Join(p.conf, "server.toml"),
			"--data-dir", dataDir, "--to", dsn, "--verify").CombinedOutput()
		return string(out), err
	}
	out, err := migrate()
	if err != nil || !strings.Contains(out, "verified: every table's row count and the manifests of 2 backups match") {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	out, err = migrate()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(out, "empty database") {
		t.Fatalf("a second migration: %v\n%s", err, out)
	}

	p.args = append(p.args, "--db", dsn)
	p.start(t)
	if !strings.Contains(p.log.String(), `"metadata":"postgres://`) {
		t.Fatalf("the server does not say it serves from PostgreSQL:\n%s", p.log)
	}
	conf := t.TempDir()
	mustIB(t, conf, "login", p.URL)
	for i, node := range []string{"b", "a"} {
		dst := filepath.Join(t.TempDir(), "dst")
		mustIB(t, conf, "backup", "restore", "latest", "--node="+node, dst, "-q")
		ibtest.TreesEqual(t, trees[1-i], dst, nil)
	}
	if _, err := api.Backup(ctx, ids[0]); !apiclient.IsNotFound(err) {
		t.Fatalf("the deleted backup came back: %v", err)
	}
	res, err := backup.Run(ctx, api, trees[1], backup.Options{Tags: manifest.Tags{"node": "b"}, BlockSize: 256 << 10, IsNotFound: apiclient.IsNotFound})
	if err != nil || res.ID != ids[2]+1 {
		t.Fatalf("a backup after the migration: id %d (%v), want %d", res.ID, err, ids[2]+1)
	}
}
