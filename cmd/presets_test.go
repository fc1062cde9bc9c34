//go:build unix

package cmd_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ib/internal/ibtest"
)

// TestPresetsAndProtectedPaths: --preset leaves a chain's secrets out and
// records itself as a label; restore keeps the preset's protected files
// where DEST has them (a validator's signing state), unless
// --overwrite-protected. (Issue 16, test e.)
func TestPresetsAndProtectedPaths(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	mt := time.Unix(1700000000, 0)
	home := t.TempDir()
	files := map[string]string{
		"config/config.toml":             "moniker = \"a\"\n",
		"config/node_key.json":           `{"priv_key": "secret"}`,
		"config/priv_validator_key.json": `{"priv_key": "secret"}`,
		"data/priv_validator_state.json": `{"height": "1000", "round": 0, "step": 3}`,
		"data/application.db/000001.ldb": "table",
		"data/application.db/LOCK":       "",
		"data/blockstore.db/000002.ldb":  "blocks",
		"data/cs.wal/wal":                "wal",
	}
	for p, c := range files {
		ibtest.WriteFile(t, filepath.Join(home, p), []byte(c), 0o600, mt)
	}
	out := mustIB(t, conf, "backup", "create", "-q", "--json", "--node=cosmos", "--preset", "cosmos", home)
	res := createJSON(t, out)
	if res.Labels["preset"] != "cosmos" || res.Labels["height"] != "1000" {
		t.Fatalf("labels %v: want preset=cosmos and the signed height", res.Labels)
	}
	if res.Files != 4 {
		t.Fatalf("%d files stored, want 4 (keys, signing state and LOCK left out)", res.Files)
	}
	dest := filepath.Join(t.TempDir(), "r")
	mustIB(t, conf, "backup", "restore", "-q", "latest", "--node=cosmos", dest)
	for _, p := range []string{"config/node_key.json", "config/priv_validator_key.json", "data/priv_validator_state.json", "data/application.db/LOCK"} {
		if _, err := os.Stat(filepath.Join(dest, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s was backed up despite the preset", p)
		}
	}

	// A backup made without the preset holds the signing state; a
	// restore over a node that signed further keeps the node's.
	mustIB(t, conf, "backup", "create", "-q", "--node=plain", home)
	newer := `{"height": "2000", "round": 0, "step": 3}`
	ibtest.WriteFile(t, filepath.Join(dest, "data/priv_validator_state.json"), []byte(newer), 0o600, mt.Add(time.Hour))
	_, errs, code := ib(t, conf, "backup", "restore", "-q", "--force", "--preset", "cosmos", "latest", "--node=plain", dest)
	if code != 0 || !strings.Contains(errs, "kept 1 file of DEST as it was (protected") {
		t.Fatalf("restore with --preset: exit %d %q", code, errs)
	}
	if got, _ := os.ReadFile(filepath.Join(dest, "data/priv_validator_state.json")); string(got) != newer {
		t.Fatalf("the protected signing state was overwritten: %s", got)
	}
	if got, _ := os.ReadFile(filepath.Join(dest, "config/node_key.json")); string(got) != files["config/node_key.json"] {
		t.Fatalf("a protected file DEST did not have was not restored: %q", got)
	}
	mustIB(t, conf, "backup", "restore", "-q", "--force", "--preset", "cosmos", "--overwrite-protected", "latest", "--node=plain", dest)
	if got, _ := os.ReadFile(filepath.Join(dest, "data/priv_validator_state.json")); string(got) != files["data/priv_validator_state.json"] {
		t.Fatalf("--overwrite-protected kept the file: %s", got)
	}

	// The preset a backup was made with protects on its own (solana's
	// tower file is backed up, and protected).
	sol := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(sol, "tower-1_9-Abc.bin"), []byte("old tower"), 0o600, mt)
	ibtest.WriteFile(t, filepath.Join(sol, "validator-keypair.json"), []byte("[1,2,3]"), 0o600, mt)
	ibtest.WriteFile(t, filepath.Join(sol, "rocksdb/000001.sst"), []byte("sst"), 0o600, mt)
	mustIB(t, conf, "backup", "create", "-q", "--node=sol", "--preset", "solana", sol)
	sdest := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(sdest, "tower-1_9-Abc.bin"), []byte("new tower"), 0o600, mt)
	mustIB(t, conf, "backup", "restore", "-q", "--force", "latest", "--node=sol", sdest)
	if got, _ := os.ReadFile(filepath.Join(sdest, "tower-1_9-Abc.bin")); string(got) != "new tower" {
		t.Fatalf("tower overwritten: %q", got)
	}
	if _, err := os.Stat(filepath.Join(sdest, "validator-keypair.json")); err == nil {
		t.Fatal("the keypair was backed up despite the preset")
	}

	// The list of presets, and a typo in a preset's name.
	if list := mustIB(t, conf, "backup", "presets"); !strings.Contains(list, "priv_validator_state.json") || !strings.Contains(list, "source:") {
		t.Errorf("backup presets:\n%s", list)
	}
	if _, errs, code := ib(t, conf, "backup", "create", "--node=x", "--preset", "cosmoss", home); code != 2 || !strings.Contains(errs, "cosmos, geth") {
		t.Errorf("unknown preset: exit %d %q", code, errs)
	}
}

// TestExcludeAndConfig: --exclude (gitignore syntax) beside the ignore
// files, and the client config's [[backup]] table for a tag set giving
// hooks, preset and excludes to a plain `ib backup create`.
func TestExcludeAndConfig(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	mt := time.Unix(1700000000, 0)
	src := t.TempDir()
	for _, p := range []string{"a.log", "keep.txt", "logs/b.log", "logs/keep.txt", "tmp/x", ".ibignore"} {
		ibtest.WriteFile(t, filepath.Join(src, p), []byte(p), 0o644, mt)
	}
	ibtest.WriteFile(t, filepath.Join(src, ".ibignore"), []byte("keep.txt\n"), 0o644, mt)
	plan := mustIB(t, conf, "backup", "create", "--dry-run", "--exclude", "*.log", "--exclude", "/tmp/", src)
	for _, want := range []string{"- a.log", "- logs/b.log", "- tmp/", "- keep.txt", "+ .ibignore"} {
		if !strings.Contains(plan, want+"\n") {
			t.Errorf("dry run lacks %q:\n%s", want, plan)
		}
	}
	rec := filepath.Join(t.TempDir(), "hooked")
	cfg, _ := os.ReadFile(filepath.Join(conf, "config.toml"))
	cfg = append(cfg, []byte(`
[[backup]]
tags = { node = "cfg" }
pre_hook = "echo ib-label from=config; touch `+rec+`"
exclude = ["*.log"]
`)...)
	os.WriteFile(filepath.Join(conf, "config.toml"), cfg, 0o600)
	res := createJSON(t, mustIB(t, conf, "backup", "create", "-q", "--json", "--node=cfg", "--network=x", src))
	if res.Labels["from"] != "config" || res.Files != 2 { // .ibignore, tmp/x
		t.Fatalf("config table: labels %v, %d files", res.Labels, res.Files)
	}
	if _, err := os.Stat(rec); err != nil {
		t.Fatal("the config's pre hook did not run")
	}
	other := createJSON(t, mustIB(t, conf, "backup", "create", "-q", "--json", "--node=other", src))
	if other.Labels["from"] != "" || other.Files != 4 {
		t.Fatalf("another tag set got the table: %+v", other)
	}
}

// TestOneFileSystem: a mount point inside the folder is kept, empty.
func TestOneFileSystem(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	src := t.TempDir()
	mnt := filepath.Join(src, "mnt")
	os.Mkdir(mnt, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "none", mnt).CombinedOutput(); err != nil {
		t.Fatalf("cannot mount a tmpfs (%v: %s): the test needs root, as .ci/run and scripts/test run", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	ibtest.WriteFile(t, filepath.Join(mnt, "other"), []byte("other fs"), 0o644, time.Unix(1700000000, 0))
	ibtest.WriteFile(t, filepath.Join(src, "here"), []byte("this fs"), 0o644, time.Unix(1700000000, 0))
	out, errs, code := ib(t, conf, "backup", "create", "-q", "--json", "--node=fs", "--one-file-system", src)
	if code != 0 {
		t.Fatalf("exit %d %s", code, errs)
	}
	if res := createJSON(t, out); res.Files != 1 || !strings.Contains(errs, "mount point(s) kept empty") {
		t.Fatalf("--one-file-system stored %d files (%q)", res.Files, errs)
	}
	if res := createJSON(t, mustIB(t, conf, "backup", "create", "-q", "--json", "--node=fs2", src)); res.Files != 2 {
		t.Fatalf("without --one-file-system: %d files", res.Files)
	}
}
