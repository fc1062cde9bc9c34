package cmd_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"ib/internal/activity"
	"ib/internal/ibtest"
)

type notice struct {
	Type string `json:"type"`
	Job  struct {
		ID       int64             `json:"id"`
		Kind     string            `json:"kind"`
		Tags     map[string]string `json:"tags"`
		BackupID int64             `json:"backup_id"`
		Client   string            `json:"client"`
		Status   string            `json:"status"`
		Bytes    int64             `json:"bytes"`
		Progress *struct {
			Phase         string `json:"phase"`
			Bytes         int64  `json:"bytes"`
			BytesUploaded int64  `json:"bytes_uploaded"`
		} `json:"progress"`
	} `json:"job"`
}

// listen reads the server's event stream into a list until the test ends.
func listenEvents(t *testing.T, url string) func() []notice {
	resp, err := http.Get(url + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	t.Cleanup(func() { resp.Body.Close() })
	var mu sync.Mutex
	var got []notice
	go func() {
		sc := bufio.NewScanner(resp.Body)
		var event string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				var n notice
				if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &n) == nil && n.Type == event {
					mu.Lock()
					got = append(got, n)
					mu.Unlock()
				}
			}
		}
	}()
	return func() []notice {
		mu.Lock()
		defer mu.Unlock()
		return append([]notice(nil), got...)
	}
}

// Issue 18: a backup reports its progress to the server's activity log;
// the event stream, read by a real client during a real backup, carries
// the job's start, progress with growing byte counts and its end, and
// /jobs lists it afterwards, as it does a delete.
func TestActivityOfABackup(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	src := textTree(t, 12, 4<<20) // ~50 MB of text at LZ4's highest level: seconds
	notices := listenEvents(t, srv.URL)
	mustIB(t, conf, "backup", "create", "-q", "--node=act", "--block-size", "1MiB", "-j", "2", src)

	var ends []notice
	var progress []int64
	waitFor(t, 10*time.Second, "the end event", func() bool {
		ends, progress = nil, nil
		for _, n := range notices() {
			switch n.Type {
			case "progress":
				if n.Job.Progress != nil {
					progress = append(progress, n.Job.Progress.Bytes+n.Job.Progress.BytesUploaded)
				}
			case "end":
				ends = append(ends, n)
			}
		}
		return len(ends) > 0
	})
	e := ends[0].Job
	if e.Kind != "backup" || e.Status != "ok" || e.BackupID != 1 || e.Tags["node"] != "act" || e.Bytes < 45<<20 {
		t.Errorf("end: %+v", e)
	}
	if e.Client != "" {
		t.Errorf("the public stream shows the client address %q", e.Client)
	}
	grew := 0
	for i := 1; i < len(progress); i++ {
		if progress[i] > progress[i-1] {
			grew++
		}
	}
	if grew < 1 {
		t.Errorf("progress bytes hashed + uploaded %v: want growing counts", progress)
	}

	mustIB(t, conf, "backup", "verify", "1")
	mustIB(t, conf, "backup", "delete", "--yes", "1")
	if jobs := jobsOf(t, srv, "node=act", ""); len(jobs) != 2 || jobs[0].Kind != "delete" || jobs[1].Kind != "backup" || jobs[1].BackupID != 1 || jobs[1].Client != "" {
		t.Fatalf("jobs of node=act: %+v", jobs)
	}
	if jobs := jobsOf(t, srv, "kind=verify", ""); len(jobs) != 1 || jobs[0].Status != "ok" || jobs[0].BackupID != 1 {
		t.Fatalf("jobs: %+v", jobs)
	}
	if jobs := jobsOf(t, srv, "kind=backup", srv.Token); len(jobs) != 1 || jobs[0].Client != "127.0.0.1" {
		t.Errorf("jobs with a token: %+v (want the client address)", jobs)
	}
	var one struct {
		Events []struct{ Message string } `json:"events"`
	}
	getJSON(t, srv.URL+"/api/v1/jobs/1", "", &one)
	if len(one.Events) != 1 || one.Events[0].Message != "committed backup 1" {
		t.Errorf("job 1 events: %+v", one.Events)
	}
}

// jobsOf lists the server's jobs (GET /jobs?query), newest first.
func jobsOf(t *testing.T, srv *ibtest.Server, query, token string) []activity.Job {
	t.Helper()
	var list struct {
		Jobs []activity.Job `json:"jobs"`
	}
	getJSON(t, srv.URL+"/api/v1/jobs?"+query, token, &list)
	return list.Jobs
}

func getJSON(t *testing.T, url, token string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// Issue 18: the job endpoints refuse what they should.
func TestActivityHostile(t *testing.T) {
	srv := ibtest.StartServer(t)
	post := func(path, token, body string) int {
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		path, token, body string
		want              int
	}{
		{"/api/v1/jobs", "", `{"kind":"backup"}`, 401},
		{"/api/v1/jobs", srv.Token, `{"kind":"prune"}`, 400},
		{"/api/v1/jobs", srv.Token, `{"kind":"backup","tags":{"":"x"}}`, 400},
		{"/api/v1/jobs", srv.Token, `{"kind":"backup","extra":1}`, 400},
		{"/api/v1/jobs", srv.Token, `{"kind":"backup","tags":{"a":"` + strings.Repeat("x", 9000) + `"}}`, 413},
		{"/api/v1/jobs/99/progress", srv.Token, `{"bytes":1}`, 404},
		{"/api/v1/jobs/x/progress", srv.Token, `{"bytes":1}`, 400},
		{"/api/v1/jobs/99/end", srv.Token, `{"status":"ok"}`, 404},
		{"/api/v1/jobs", srv.Token, `{"kind":"restore"}`, 201},
		{"/api/v1/jobs/1/progress", srv.Token, `{"bytes":-1}`, 400},
		{"/api/v1/jobs/1/end", srv.Token, `{"status":"running"}`, 400},
		{"/api/v1/jobs/1/end", srv.Token, `{"status":"failed","error":"disk full"}`, 200},
		{"/api/v1/jobs/1/end", srv.Token, `{"status":"ok"}`, 404},
	} {
		if got := post(c.path, c.token, c.body); got != c.want {
			t.Errorf("POST %s %.60s: %d, want %d", c.path, c.body, got, c.want)
		}
	}
	for _, q := range []string{"kind=nope", "status=x", "before=-1", "limit=0", "limit=5000", "a=1&a=2"} {
		resp, err := http.Get(srv.URL + "/api/v1/jobs?" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("GET /jobs?%s: %d, want 400", q, resp.StatusCode)
		}
	}
}
