package restore

import (
	"fmt"
	"testing"
	"time"

	"ib/internal/manifest"
)

func TestDirSpillReadsBackward(t *testing.T) {
	d, err := newDirSpill()
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	const n = 10_000
	for i := range n {
		e := manifest.Entry{Path: fmt.Sprintf("d%05d/x", i), Type: manifest.TypeDir, Mode: 0o755, MTime: time.Unix(1700000000, int64(i)).UTC(), UID: uint32(i)}
		if err := d.add(e); err != nil {
			t.Fatal(err)
		}
	}
	want := n - 1
	err = d.backward(func(e manifest.Entry) error {
		if e.Path != fmt.Sprintf("d%05d/x", want) || e.MTime.Nanosecond() != want || e.UID != uint32(want) || e.Mode != 0o755 {
			return fmt.Errorf("record %d: %+v", want, e)
		}
		want--
		return nil
	})
	if err != nil || want != -1 {
		t.Fatalf("%v; %d records left", err, want+1)
	}
}
