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

// Issue 17: diff between two backups (manifests only) and between a live
// folder and a backup, with diff(1)'s exit status.
func TestDiff(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	mt := time.Unix(1700000000, 0)
	src := t.TempDir()
	for p, c := range map[string]string{"a.txt": "alpha", "b.txt": "bravo", "c.txt": "charlie", "old/name.sst": "the table", "x": "file"} {
		ibtest.WriteFile(t, filepath.Join(src, p), []byte(c), 0o644, mt)
	}
	mustIB(t, conf, "backup", "create", "-q", "--node=d", src)

	ibtest.WriteFile(t, filepath.Join(src, "a.txt"), []byte("ALPHA!"), 0o644, mt.Add(time.Hour)) // M
	os.Chmod(filepath.Join(src, "b.txt"), 0o600)                                                 // m
	os.Remove(filepath.Join(src, "c.txt"))                                                       // -
	ibtest.WriteFile(t, filepath.Join(src, "d.txt"), []byte("delta"), 0o644, mt)                 // +
	os.MkdirAll(filepath.Join(src, "new"), 0o755)
	os.Rename(filepath.Join(src, "old", "name.sst"), filepath.Join(src, "new", "name.sst")) // R
	os.Remove(filepath.Join(src, "x"))
	os.Mkdir(filepath.Join(src, "x"), 0o755) // T
	os.Chtimes(filepath.Join(src, "new"), mt, mt)
	mustIB(t, conf, "backup", "create", "-q", "--node=d", src)

	out, errs, code := ib(t, conf, "backup", "diff", "1", "2")
	want := "M a.txt\nm b.txt\nT x/\n- c.txt\n+ d.txt\n+ new/\nR old/name.sst -> new/name.sst\n"
	if code != 1 || out != want {
		t.Fatalf("diff 1 2: exit %d %q\n%s\nwant\n%s", code, errs, out, want)
	}
	if out, _, code := ib(t, conf, "backup", "diff", "2", "2"); code != 0 || out != "" {
		t.Fatalf("diff 2 2: exit %d %q", code, out)
	}
	js, _, _ := ib(t, conf, "backup", "diff", "1", "2", "--json")
	var first struct{ Op, Path string }
	if err := json.Unmarshal([]byte(strings.SplitN(js, "\n", 2)[0]), &first); err != nil || first.Op != "M" || first.Path != "a.txt" {
		t.Fatalf("--json: %q (%v)", js, err)
	}

	// A live folder against its backup: the same, then one edit that keeps
	// size and mtime, which only --content finds.
	if out, errs, code := ib(t, conf, "backup", "diff", "latest", "--node=d", src); code != 0 || out != "" {
		t.Fatalf("live diff of an unchanged folder: exit %d %q %q", code, out, errs)
	}
	ibtest.WriteFile(t, filepath.Join(src, "d.txt"), []byte("DELTA"), 0o644, mt)
	if out, _, code := ib(t, conf, "backup", "diff", "latest", "--node=d", src); code != 0 || out != "" {
		t.Fatalf("same size and mtime without --content: exit %d %q", code, out)
	}
	out, errs, code = ib(t, conf, "backup", "diff", "latest", "--node=d", "--content", src)
	if code != 1 || out != "M d.txt\n" || !strings.Contains(errs, "ib backup restore 2 "+src+" --force --delete") {
		t.Fatalf("--content: exit %d %q %q", code, out, errs)
	}
	if _, errs, code := ib(t, conf, "backup", "diff", "99", "2"); code != 2 || !strings.Contains(errs, "99") {
		t.Fatalf("diff of a missing backup: exit %d %q, want 2", code, errs)
	}
}

// Issue 17: cat writes one file, verified; a corrupt block stops it before
// any of its bytes, with exit 1.
func TestCat(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	src := t.TempDir()
	data := ibtest.RandomBytes(3 << 20)
	ibtest.WriteFile(t, filepath.Join(src, "cfg", "genesis.json"), []byte(`{"chain_id":"x"}`), 0o644, time.Unix(1700000000, 0))
	ibtest.WriteFile(t, filepath.Join(src, "big"), data, 0o644, time.Unix(1700000000, 0))
	mustIB(t, conf, "backup", "create", "-q", "--node=cat", "--block-size", "1MiB", src)
	if out := mustIB(t, conf, "backup", "cat", "latest", "--node=cat", "cfg/genesis.json"); out != `{"chain_id":"x"}` {
		t.Fatalf("cat: %q", out)
	}
	if out := mustIB(t, conf, "backup", "cat", "1", "big"); out != string(data) {
		t.Fatal("cat of a 3-block file differs")
	}
	if _, errs, code := ib(t, conf, "backup", "cat", "1", "cfg"); code != 1 || !strings.Contains(errs, "not a file") {
		t.Fatalf("cat of a folder: exit %d %q", code, errs)
	}
	// Corrupt the second block of big (blocks are named by CID).
	second := ""
	_, body := get(t, srv.URL+"/api/v1/backups/1/manifest")
	var man struct {
		Entries []struct {
			Path   string
			Blocks []struct{ CID string }
		}
	}
	json.Unmarshal(body, &man)
	for _, e := range man.Entries {
		if e.Path == "big" {
			second = e.Blocks[1].CID
		}
	}
	var blockFile string
	filepath.WalkDir(filepath.Join(srv.DataDir, "blocks"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == second {
			blockFile = p
		}
		return nil
	})
	b, err := os.ReadFile(blockFile)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	os.WriteFile(blockFile, b, 0o600)
	out, errs, code := ib(t, conf, "backup", "cat", "1", "big")
	if code != 1 || !strings.Contains(errs, second) || out != string(data[:1<<20]) {
		t.Fatalf("cat of a corrupt block: exit %d, %d bytes out, %q: want 1 and the first block only", code, len(out), errs)
	}
}
