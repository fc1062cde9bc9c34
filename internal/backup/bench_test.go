package backup

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkHashFile: cutting a 64 MiB file into 16 MiB blocks and naming
// each by its CID, from the page cache (the first pass of every new file).
//
//	go test -run '^$' -bench BenchmarkHashFile ./internal/backup/
func BenchmarkHashFile(b *testing.B) {
	p := filepath.Join(b.TempDir(), "data")
	data := make([]byte, 64<<20)
	rand.Read(data)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		b.Fatal(err)
	}
	r := &run{opts: Options{BlockSize: 16 << 20}}
	r.opts.defaults()
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		rd, err := r.hashFile(context.Background(), p, buf, nil)
		if err != nil || rd.size != int64(len(data)) || len(rd.blocks) != 4 || !rd.stable {
			b.Fatalf("hashFile: %d blocks, %d bytes, stable %v, %v", len(rd.blocks), rd.size, rd.stable, err)
		}
	}
}
