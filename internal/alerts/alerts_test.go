package alerts_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ib/internal/activity"
	"ib/internal/alerts"
	"ib/internal/apiclient"
	"ib/internal/backup"
	"ib/internal/ibtest"
	"ib/internal/notify"
	"ib/internal/server"
)

type hook struct {
	mu   sync.Mutex
	msgs []map[string]any
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var m map[string]any
	json.NewDecoder(r.Body).Decode(&m)
	h.mu.Lock()
	h.msgs = append(h.msgs, m)
	h.mu.Unlock()
}

func (h *hook) take() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.msgs
	h.msgs = nil
	return out
}

// Issue 18: a tag set with no backup for longer than --stale-after fires
// one alert (however often it is checked), and one "resolved" when a
// backup arrives; the clock is moved, as retention's tests do. A scrub
// that found corrupt blocks, a failed prune and a full disk fire too; a
// restart neither forgets nor repeats a firing alert.
func TestAlerts(t *testing.T) {
	h := &hook{}
	hs := httptest.NewServer(h)
	defer hs.Close()
	srv := ibtest.StartServer(t, func(o *server.Options) {
		o.Alerts = alerts.Config{Targets: []notify.Target{{Webhook: hs.URL}}, StaleAfter: 26 * time.Hour, Every: -1,
			Rules: []alerts.StaleRule{{Tags: map[string]string{"node": "archive"}, After: 0}}}
	})
	api, _ := apiclient.New(srv.URL, srv.Token)
	ctx := context.Background()
	var nowNS atomic.Int64 // the server's loop reads the clock too
	nowNS.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, nowNS.Load()) }
	now := clock()
	srv.Store.SetClock(clock)
	srv.Alerts.SetClock(clock)
	srv.Alerts.SetFree(func(string) (uint64, uint64, error) { return 50, 100, nil })
	for _, node := range []string{"geth", "archive"} {
		src := t.TempDir()
		ibtest.WriteFile(t, filepath.Join(src, "f"), []byte(node), 0o644, now)
		if _, err := backup.Run(ctx, api, src, backup.Options{Tags: map[string]string{"node": node}, IsNotFound: apiclient.IsNotFound}); err != nil {
			t.Fatal(err)
		}
	}
	check := func() []map[string]any {
		srv.Alerts.Check(ctx)
		srv.Alerts.Wait()
		return h.take()
	}
	if got := check(); len(got) != 0 {
		t.Fatalf("fresh backups: %v", got)
	}
	nowNS.Add(int64(27 * time.Hour))
	now = clock()
	got := check()
	if len(got) != 1 || got[0]["alert"] != "stale" || got[0]["status"] != "firing" || got[0]["tags"].(map[string]any)["node"] != "geth" {
		t.Fatalf("27 h later: %v (want one stale alert for node=geth; node=archive is never stale)", got)
	}
	if got := check(); len(got) != 0 {
		t.Fatalf("checked again: %v (want nothing: it fired once)", got)
	}
	if len(srv.Alerts.Active()) != 1 {
		t.Fatalf("active: %v", srv.Alerts.Active())
	}

	// A restart keeps the alert firing without sending it again.
	srv.Stop()
	srv.Start(t)
	srv.Store.SetClock(clock)
	srv.Alerts.SetClock(clock)
	srv.Alerts.SetFree(func(string) (uint64, uint64, error) { return 50, 100, nil })
	if got := check(); len(got) != 0 || len(srv.Alerts.Active()) != 1 {
		t.Fatalf("after a restart: sent %v, active %v", got, srv.Alerts.Active())
	}

	api, _ = apiclient.New(srv.URL, srv.Token)
	src := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, "f"), []byte("again"), 0o644, now)
	if _, err := backup.Run(ctx, api, src, backup.Options{Tags: map[string]string{"node": "geth"}, IsNotFound: apiclient.IsNotFound}); err != nil {
		t.Fatal(err)
	}
	got = check()
	if len(got) != 1 || got[0]["alert"] != "stale" || got[0]["status"] != "resolved" {
		t.Fatalf("after a new backup: %v (want one resolved)", got)
	}

	// Low disk, corrupt blocks, a failed prune: each fires once and clears.
	srv.Alerts.SetFree(func(string) (uint64, uint64, error) { return 3, 100, nil })
	if got := check(); len(got) != 1 || got[0]["alert"] != "low_disk" || got[0]["status"] != "firing" {
		t.Fatalf("3%% free: %v", got)
	}
	srv.Alerts.SetFree(func(string) (uint64, uint64, error) { return 30, 100, nil })
	if got := check(); len(got) != 1 || got[0]["alert"] != "low_disk" || got[0]["status"] != "resolved" {
		t.Fatalf("30%% free: %v", got)
	}
	for _, c := range []struct {
		job    activity.Job
		alert  string
		status string
	}{
		{activity.Job{Kind: activity.KindScrub, Status: activity.Warning, Error: "2 corrupt blocks"}, "corrupt", "firing"},
		{activity.Job{Kind: activity.KindScrub, Status: activity.Warning, Error: "2 corrupt blocks"}, "", ""},
		{activity.Job{Kind: activity.KindScrub, Status: activity.OK}, "corrupt", "resolved"},
		{activity.Job{Kind: activity.KindPrune, Status: activity.Failed, Error: "disk I/O error"}, "prune", "firing"},
		{activity.Job{Kind: activity.KindPrune, Status: activity.OK}, "prune", "resolved"},
	} {
		srv.Alerts.JobEnded(c.job)
		srv.Alerts.Wait()
		got := h.take()
		if c.alert == "" && len(got) != 0 || c.alert != "" && (len(got) != 1 || got[0]["alert"] != c.alert || got[0]["status"] != c.status) {
			t.Errorf("%s %s: %v, want %s %s", c.job.Kind, c.job.Status, got, c.alert, c.status)
		}
	}
}
