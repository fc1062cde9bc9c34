package backup

import (
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"ib/internal/scan"
)

// TestFDFileIsAnOSFile: a file read through its descriptor gives what
// os.File gives: the same FileInfo (mode bits with setuid, setgid and
// sticky, size, mtime to the nanosecond, stamp), the same bytes through
// Read and ReadAt (io.EOF past the end), and a second Close refused.
func TestFDFileIsAnOSFile(t *testing.T) {
	dir := t.TempDir()
	data := []byte("0123456789abcdefghij")
	for i, mode := range []os.FileMode{0o644, 0o600 | os.ModeSetuid, 0o755 | os.ModeSetgid, 0o700 | os.ModeSticky} {
		path := filepath.Join(dir, "f"+string(rune('a'+i)))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		mt := time.Unix(1700000000, 123456789)
		if err := os.Chtimes(path, mt, mt); err != nil {
			t.Fatal(err)
		}
		f, err := openNoFollow(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got.Mode() != want.Mode() || got.Size() != want.Size() || !got.ModTime().Equal(want.ModTime()) || got.Name() != want.Name() || got.IsDir() {
			t.Errorf("%s: fstat %v %d %v %q, os.Stat %v %d %v %q", path, got.Mode(), got.Size(), got.ModTime(), got.Name(), want.Mode(), want.Size(), want.ModTime(), want.Name())
		}
		if scan.StampOf(got) != scan.StampOf(want) {
			t.Errorf("%s: stamp %+v, want %+v", path, scan.StampOf(got), scan.StampOf(want))
		}
		all, err := io.ReadAll(f)
		if err != nil || string(all) != string(data) {
			t.Errorf("%s: read %q, %v", path, all, err)
		}
		part := make([]byte, 5)
		if n, err := f.ReadAt(part, 15); n != 5 || err != nil || string(part) != "fghij" {
			t.Errorf("ReadAt(15): %d %q %v", n, part, err)
		}
		if n, err := f.ReadAt(part, 17); n != 3 || err != io.EOF {
			t.Errorf("ReadAt past the end: %d, %v, want 3, EOF", n, err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err == nil {
			t.Error("a second Close succeeded")
		}
	}
	// A directory and a FIFO open without blocking and say what they are.
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: os.ModeDir, fifo: os.ModeNamedPipe} {
		f, err := openNoFollow(path)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := f.Stat()
		if err != nil || fi.Mode().Type() != want {
			t.Errorf("%s: %v, %v, want type %v", path, fi.Mode(), err, want)
		}
		f.Close()
	}
}
