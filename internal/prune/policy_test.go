package prune

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func day(n int) time.Time { return now.Add(-time.Duration(n) * 24 * time.Hour) }

// fixture: two busy tag sets, one that stopped backing up long ago, one
// with a single backup, and two backups in the same second.
var fixture = []Backup{
	{1, day(200), `{"node":"tezos"}`, 100, 1000},
	{2, day(120), `{"node":"tezos"}`, 100, 1000},
	{3, day(91), `{"node":"tezos"}`, 100, 1000},
	{4, day(89), `{"node":"tezos"}`, 100, 1000},
	{5, day(1), `{"node":"tezos"}`, 100, 1000},
	{6, day(300), `{"node":"geth"}`, 100, 1000},
	{7, day(250), `{"node":"geth"}`, 100, 1000},
	{8, day(10), `{"node":"solo"}`, 100, 1000},
	{9, day(100), `{"node":"tie"}`, 100, 1000},
	{10, day(100), `{"node":"tie"}`, 100, 1000},
	{11, day(95), `{"node":"eth","network":"sepolia"}`, 100, 1000},
	{12, day(2), `{"node":"eth","network":"sepolia"}`, 100, 1000},
	// a disk that was not mounted for months: only the first backup is whole
	{13, day(200), `{"node":"disk"}`, 100, 1000},
	{14, day(150), `{"node":"disk"}`, 0, 0},
	{15, day(120), `{"node":"disk"}`, 3, 10},
	{16, day(100), `{"node":"disk"}`, 0, 0},
	// a folder that became smaller for good: two in a row make it normal
	{17, day(200), `{"node":"slim"}`, 100, 1000},
	{18, day(150), `{"node":"slim"}`, 40, 400},
	{19, day(120), `{"node":"slim"}`, 40, 400},
	{20, day(100), `{"node":"slim"}`, 41, 410},
}

func render(ds []Decision) string {
	var b strings.Builder
	for _, d := range ds {
		verb := "keep  "
		if d.Delete {
			verb = "DELETE"
		}
		fmt.Fprintf(&b, "%s %3d %s %-34s %s\n", verb, d.ID, d.CreatedAt.Format("2006-01-02"), d.TagSet, d.Reason)
	}
	return b.String()
}

func TestPolicyGolden(t *testing.T) {
	cases := map[string]Rules{
		"server-default-90d-keep1": Retention(90*24*time.Hour, 1),
		"retention-0-keeps-all":    Retention(0, 1),
		"retention-90d-keep0":      Retention(90*24*time.Hour, 0),
		"keep-last-2":              {KeepLast: 2, HasKeepLast: true},
		"keep-last-1-ties":         {KeepLast: 1, HasKeepLast: true},
		"older-than-100d":          {OlderThan: 100 * 24 * time.Hour, HasOlderThan: true},
		"older-than-30d-keep-3":    {OlderThan: 30 * 24 * time.Hour, HasOlderThan: true, KeepLast: 3, HasKeepLast: true},
		"keep-last-0":              {KeepLast: 0, HasKeepLast: true},
		"no-rules":                 {},
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			got := render(Decide(fixture, r, now))
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if got != string(want) {
				t.Errorf("decisions differ from %s:\ngot:\n%s\nwant:\n%s", path, got, want)
			}
		})
	}
}

// Properties that hold whatever the golden files say.
func TestPolicyInvariants(t *testing.T) {
	ds := Decide(fixture, Retention(90*24*time.Hour, 1), now)
	if len(ds) != len(fixture) {
		t.Fatalf("%d decisions for %d backups", len(ds), len(fixture))
	}
	newest := map[string]int64{}
	for _, d := range ds {
		if _, seen := newest[d.TagSet]; !seen {
			newest[d.TagSet] = d.ID
			if d.Delete {
				t.Errorf("the newest backup %d of %s is deleted", d.ID, d.TagSet)
			}
		}
	}
	// the tie: same instant, the higher ID is the newer one and is kept
	for _, d := range Decide(fixture, Rules{KeepLast: 1, HasKeepLast: true}, now) {
		if d.ID == 10 && d.Delete || d.ID == 9 && !d.Delete {
			t.Errorf("tie on the same second: %d delete=%v", d.ID, d.Delete)
		}
	}
}
