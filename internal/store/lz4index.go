package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// The block sizes of a .tar.lz4 stream are learnt by compressing it once.
// For the archive of a whole backup, the first GET starts an index pass in
// the background (one at a time in the server, at most once per backup:
// its result is kept on disk, beside the database, and removed with the
// backup), so a first download cut at 300 GB resumes: its Range request
// waits for the pass and is then answered like any other. The archives of
// folders and selections learn their sizes from one stream sent whole, in
// memory only (anyone may ask for any of them).

// lz4Index keeps block sizes in memory, within a bound on the blocks
// counted (4 bytes each), and those of whole backups on disk.
type lz4Index struct {
	mu     sync.Mutex
	dir    string // "" keeps nothing on disk
	sizes  map[string][]uint32
	order  []string
	blocks int
}

const maxLZ4IndexBlocks = 16 << 20 // 64 MiB of sizes: 16 TiB of tar

// lz4Magic starts an index file; the tar's size and the sizes follow.
var lz4Magic = []byte("ib-lz4-sizes-1\n")

func (x *lz4Index) file(id int64) string {
	return filepath.Join(x.dir, strconv.FormatInt(id, 10)+".lz4sizes")
}

// load returns the sizes of ar's stream of n blocks, or nil.
func (x *lz4Index) load(ar *ArchiveReader, n int) []uint32 {
	x.mu.Lock()
	sizes := x.sizes[ar.key]
	x.mu.Unlock()
	if sizes != nil || !ar.whole || x.dir == "" {
		return sizes
	}
	b, err := os.ReadFile(x.file(ar.id))
	if err != nil || !bytes.HasPrefix(b, lz4Magic) {
		return nil
	}
	b = b[len(lz4Magic):]
	if len(b) != 8+4*n || binary.LittleEndian.Uint64(b) != uint64(ar.size) {
		return nil // not this archive's: the encoder checks each size anyway
	}
	sizes = make([]uint32, n)
	for i := range sizes {
		sizes[i] = binary.LittleEndian.Uint32(b[8+4*i:])
	}
	x.keep(ar.key, sizes)
	return sizes
}

// store keeps the sizes of ar's stream: in memory, and on disk for a whole
// backup.
func (x *lz4Index) store(ar *ArchiveReader, sizes []uint32) error {
	if len(sizes) > maxLZ4IndexBlocks {
		return nil
	}
	x.keep(ar.key, sizes)
	if !ar.whole || x.dir == "" {
		return nil
	}
	b := make([]byte, 0, len(lz4Magic)+8+4*len(sizes))
	b = append(b, lz4Magic...)
	b = binary.LittleEndian.AppendUint64(b, uint64(ar.size))
	for _, n := range sizes {
		b = binary.LittleEndian.AppendUint32(b, n)
	}
	if err := os.MkdirAll(x.dir, 0o700); err != nil {
		return fmt.Errorf("lz4 index: %w", err)
	}
	tmp := x.file(ar.id) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("lz4 index: %w", err)
	}
	if err := os.Rename(tmp, x.file(ar.id)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("lz4 index: %w", err)
	}
	return nil
}

func (x *lz4Index) keep(key string, sizes []uint32) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.sizes == nil {
		x.sizes = map[string][]uint32{}
	}
	if _, ok := x.sizes[key]; ok {
		return
	}
	for x.blocks+len(sizes) > maxLZ4IndexBlocks && len(x.order) > 0 {
		old := x.order[0]
		x.order = x.order[1:]
		x.blocks -= len(x.sizes[old])
		delete(x.sizes, old)
	}
	x.sizes[key] = sizes
	x.order = append(x.order, key)
	x.blocks += len(sizes)
}

// forget removes the sizes of a deleted backup from disk (the memory ones
// age out: an id is never reused).
func (x *lz4Index) forget(id int64) {
	if x.dir != "" {
		os.Remove(x.file(id))
	}
}

// bgWork is the store's background work until Close: the index passes
// (one at a time, one per backup) and the added-bytes fills.
type bgWork struct {
	mu      sync.Mutex
	running map[int64]chan struct{} // closed when the pass of a backup ends
	turn    chan struct{}           // one pass compresses at a time
	ctx     context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

// init makes the background's context (under p.mu).
func (p *bgWork) init() {
	if p.ctx == nil {
		p.ctx, p.stop = context.WithCancel(context.Background())
		p.running = map[int64]chan struct{}{}
		p.turn = make(chan struct{}, 1)
	}
}

// background runs f in the store's background (stopped and waited for
// by Close), unless the store is closing.
func (s *Store) background(f func(ctx context.Context)) {
	p := &s.bg
	p.mu.Lock()
	defer p.mu.Unlock()
	p.init()
	if p.ctx.Err() != nil {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f(p.ctx)
	}()
}

// SetIndexDir keeps the block sizes of whole-backup .tar.lz4 streams in dir.
func (s *Store) SetIndexDir(dir string) { s.lz4.dir = dir }

// IndexLZ4 starts the index pass of backup id's whole .tar.lz4 stream,
// unless its sizes are known or a pass runs; the channel is closed when
// they are known (or the pass failed or was stopped).
func (s *Store) IndexLZ4(id int64) <-chan struct{} {
	p := &s.bg
	p.mu.Lock()
	defer p.mu.Unlock()
	if done, ok := p.running[id]; ok {
		return done
	}
	done := make(chan struct{})
	p.init()
	if p.ctx.Err() != nil {
		close(done)
		return done
	}
	p.running[id] = done
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		err := s.indexPass(p.ctx, id)
		if err != nil && p.ctx.Err() == nil {
			s.log.Warn("tar.lz4 index pass failed", "backup", id, "err", err)
		}
		p.mu.Lock()
		delete(p.running, id)
		p.mu.Unlock()
		close(done)
	}()
	return done
}

// indexPass compresses backup id's whole archive once, keeping the size of
// each block of the stream.
func (s *Store) indexPass(ctx context.Context, id int64) error {
	p := &s.bg
	select {
	case p.turn <- struct{}{}:
		defer func() { <-p.turn }()
	case <-ctx.Done():
		return ctx.Err()
	}
	ar, err := s.OpenArchive(ctx, id, nil)
	if err != nil {
		return err
	}
	defer ar.Close()
	l := s.LZ4(ar)
	if l.Known() {
		return nil
	}
	start := time.Now()
	sizes := make([]uint32, 0, l.blocks())
	for i := range l.blocks() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := l.encode(i); err != nil {
			return err
		}
		sizes = append(sizes, uint32(len(l.cur)))
	}
	if err := s.lz4.store(ar, sizes); err != nil {
		return err
	}
	s.log.Info("tar.lz4 indexed", "backup", id, "tar_bytes", ar.size, "blocks", len(sizes), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// Close stops the store's background work and waits for it.
func (s *Store) Close() error {
	p := &s.bg
	p.mu.Lock()
	p.init()
	p.stop()
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}
