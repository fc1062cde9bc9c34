package backup

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"ib/internal/manifest"
)

// prevFile writes a manifest document of a folder "." with n empty files
// (f00000, f00001, ...) to a file; broken > 0 puts the file at that index
// out of walk order.
func prevFile(t *testing.T, n, broken int) *os.File {
	t.Helper()
	entries := []*manifest.Entry{{Path: ".", Type: manifest.TypeDir, Mode: 0o755, MTime: time.Unix(1700000000, 0).UTC()}}
	for i := range n {
		name := fmt.Sprintf("f%05d", i)
		if i == broken && broken > 0 {
			name = "a" // sorts before the files already listed
		}
		entries = append(entries, &manifest.Entry{Path: name, Type: manifest.TypeFile, Mode: 0o644, MTime: time.Unix(1700000000, int64(i)).UTC()})
	}
	b := []byte(`{"entries":[`)
	for i, e := range entries {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = manifest.AppendJSON(b, e); err != nil {
			t.Fatal(err)
		}
	}
	b = append(b, "]}"...)
	name := filepath.Join(t.TempDir(), "prev.json")
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestPrevReadsAhead: the previous manifest, decoded by a goroutine ahead
// of the walk, gives the walk every entry in order (finds of every path,
// of every other one, every seventh, and of paths it lacks in between); a checked manifest from a
// server gives nothing past its first invalid entry; and close returns
// while the goroutine waits to hand over more (a backup that fails early).
func TestPrevReadsAhead(t *testing.T) {
	const n = 3 * prevBatch * 4 // more than the channel holds
	for _, step := range []int{1, 2, 7} {
		p := newPrev(prevFile(t, n, 0), manifest.NewReader(bufReader(prevFile(t, n, 0)), nil), step == 7)
		for i := 0; i < n; i += step {
			path := fmt.Sprintf("f%05d", i)
			if e := p.find(path); e == nil || e.Path != path || e.MTime.Nanosecond() != i {
				t.Fatalf("step %d: find(%q) = %+v", step, path, e)
			}
			if e := p.find(path + "-"); e != nil {
				t.Fatalf("step %d: found %q, which the manifest lacks", step, e.Path)
			}
		}
		p.close()
	}

	// Checked: the entries before the broken one are found, none after.
	const broken = prevBatch + 10
	p := newPrev(prevFile(t, n, broken), manifest.NewReader(bufReader(prevFile(t, n, broken)), nil), true)
	if e := p.find(fmt.Sprintf("f%05d", broken-1)); e == nil {
		t.Fatal("an entry before the broken one was not found")
	}
	if e := p.find(fmt.Sprintf("f%05d", broken+1)); e != nil {
		t.Fatalf("found %q past the broken entry of a checked manifest", e.Path)
	}
	p.close()

	// Closed after one find, with the goroutine blocked on a full channel.
	p = newPrev(prevFile(t, n, 0), manifest.NewReader(bufReader(prevFile(t, n, 0)), nil), true)
	if e := p.find("f00000"); e == nil {
		t.Fatal("first entry not found")
	}
	time.Sleep(50 * time.Millisecond) // the goroutine fills the channel and waits
	closed := make(chan struct{})
	go func() { p.close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("close did not return: the reader goroutine was not stopped")
	}
	select {
	case <-p.done:
	default:
		t.Fatal("close returned before the reader goroutine ended")
	}
	if _, err := p.f.Read(make([]byte, 1)); err == nil || err == io.EOF {
		t.Fatalf("the manifest file is still open after close: %v", err)
	}
}
