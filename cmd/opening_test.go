package cmd_test

import (
	"path/filepath"
	"testing"
	"time"

	"ib/internal/ibtest"
)

// A backup asks its opening questions (what the token may do, a job for
// the activity log, the newest backup of its tags) at once, and the newest
// backup once: over a link with a long round trip they cost one wait.
func TestBackupOpensInOneRoundTrip(t *testing.T) {
	srv := ibtest.StartServer(t)
	front := ibtest.StartRecordingFront(t, srv.URL, 150*time.Millisecond)
	conf := t.TempDir()
	mustIB(t, conf, "login", front.URL, "--token", srv.Token)
	src := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, "f"), []byte("x"), 0o644, time.Unix(1700000000, 0))
	mustIB(t, conf, "backup", "create", "-q", "--node=far", src)
	front.Reset()
	mustIB(t, conf, "backup", "create", "-q", "--node=far", src)
	opening := map[string][]ibtest.Call{}
	for _, c := range front.Calls() {
		switch k := c.Method + " " + c.Path; k {
		case "GET /api/v1/whoami", "POST /api/v1/jobs", "GET /api/v1/backups/latest":
			opening[k] = append(opening[k], c)
		}
	}
	var last time.Time
	first := time.Now()
	for _, k := range []string{"GET /api/v1/whoami", "POST /api/v1/jobs", "GET /api/v1/backups/latest"} {
		if len(opening[k]) != 1 {
			t.Fatalf("%s asked %d times by a backup, want once: %+v", k, len(opening[k]), front.Calls())
		}
		c := opening[k][0]
		if c.Start.After(last) {
			last = c.Start
		}
		if c.End.Before(first) {
			first = c.End
		}
	}
	if !last.Before(first) {
		t.Fatalf("the opening questions waited for each other (the last asked %v after the first was answered): %+v", last.Sub(first), opening)
	}
}
