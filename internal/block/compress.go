package block

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/pierrec/lz4/v4"
)

// A Compressor writes wire forms with a fixed set of workers shared by every
// block being sent. A wire form is an LZ4 frame of independent 1 MiB blocks,
// so the frame blocks of one large block are compressed on all cores at once
// while they are written out in order; the tail of a backup (one 128 MiB
// block left) keeps every core busy, and memory is a fixed number of 1 MiB
// buffers whatever the number of uploads.
//
// Frame blocks that do not shrink are stored as they are, which the LZ4
// frame format allows. At the HC levels a frame block that is mostly runs of
// one byte (zero-padded records, sparse files) is searched no deeper than
// level 1: pierrec's deep chains crawl on such data (5 MB/s at level 9
// against 80 MB/s at level 1, measured on the benchmark's records) for a
// ratio 0.3% better.
type Compressor struct {
	level Level
	jobs  chan *chunk
	free  chan *chunk
	wg    sync.WaitGroup
	// header is the frame header shared by every wire form.
	header []byte
}

// chunk is one frame block on its way through a worker.
type chunk struct {
	src  []byte // up to frameBytes of input
	dst  []byte // the frame block: 4-byte header and payload
	done chan struct{}
}

const frameBytes = 1 << 20 // matches frameBlock

// NewCompressor starts workers compressing at level; buffers bounds the frame
// blocks in flight (each about 2 MiB). Close it to stop the workers.
func NewCompressor(level Level, workers, buffers int) (*Compressor, error) {
	workers = max(workers, 1)
	buffers = max(buffers, workers)
	hdr, err := frameHeader(level)
	if err != nil {
		return nil, err
	}
	c := &Compressor{level: level, jobs: make(chan *chunk, buffers), free: make(chan *chunk, buffers), header: hdr}
	for range buffers {
		c.free <- &chunk{done: make(chan struct{}, 1)}
	}
	for range workers {
		c.wg.Add(1)
		go c.work()
	}
	return c, nil
}

// frameHeader takes the header that pierrec's writer puts before the first
// block with the options of NewEncoder, so that both write the same frames.
func frameHeader(level Level) ([]byte, error) {
	var buf bytesWriter
	zw, err := NewEncoder(&buf, level)
	if err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("lz4 header: %w", err)
	}
	if len(buf) != 11 { // 7 bytes of header, 4 of end mark
		return nil, fmt.Errorf("lz4 header: unexpected empty frame of %d bytes", len(buf))
	}
	return buf[:7], nil
}

type bytesWriter []byte

func (b *bytesWriter) Write(p []byte) (int, error) { *b = append(*b, p...); return len(p), nil }

// Close stops the workers. No Encode may be running.
func (c *Compressor) Close() {
	close(c.jobs)
	c.wg.Wait()
}

func (c *Compressor) work() {
	defer c.wg.Done()
	var fast lz4.Compressor
	hc := lz4.CompressorHC{}
	for ch := range c.jobs {
		ch.dst = c.compress(ch.src, ch.dst, &fast, &hc)
		ch.done <- struct{}{}
	}
}

// compress appends one frame block (size header and payload) to dst[:0].
func (c *Compressor) compress(src, dst []byte, fast *lz4.Compressor, hc *lz4.CompressorHC) []byte {
	dst = dst[:0]
	if cap(dst) < 4+lz4.CompressBlockBound(len(src)) {
		dst = make([]byte, 0, 4+lz4.CompressBlockBound(frameBytes))
	}
	out := dst[4 : 4+lz4.CompressBlockBound(len(src))]
	var n int
	var err error
	if c.level.lz4 == lz4.Fast {
		n, err = fast.CompressBlock(src, out)
	} else {
		hc.Level = c.level.lz4
		if hc.Level > lz4.Level1 && runHeavy(src) {
			hc.Level = lz4.Level1
		}
		n, err = hc.CompressBlock(src, out)
	}
	if err != nil || n == 0 || n >= len(src) {
		// Stored: the high bit of the size marks an uncompressed block.
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(src))|1<<31)
		return append(dst, src...)
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
	return dst[:4+n]
}

// runHeavy tells, from 64 samples of 64 bytes, whether at least a quarter of
// src's bytes repeat the byte before them.
func runHeavy(src []byte) bool {
	const samples, span = 64, 64
	if len(src) < samples*span {
		return false
	}
	step := len(src) / samples
	same, total := 0, 0
	for i := 0; i+span <= len(src); i += step {
		s := src[i : i+span]
		for j := 1; j < len(s); j++ {
			if s[j] == s[j-1] {
				same++
			}
		}
		total += span - 1
	}
	return same*4 >= total
}

// Encode reads r to its end and writes its wire form to w. It returns the
// number of bytes read.
func (c *Compressor) Encode(ctx context.Context, w io.Writer, r io.Reader) (int64, error) {
	if _, err := w.Write(c.header); err != nil {
		return 0, err
	}
	var read int64
	var pending []*chunk // in input order
	defer func() {
		// On an early return, wait for the workers before giving buffers back.
		for _, ch := range pending {
			<-ch.done
			c.free <- ch
		}
	}()
	// flush writes the oldest pending frame block.
	flush := func() error {
		ch := pending[0]
		<-ch.done
		pending = pending[1:]
		_, err := w.Write(ch.dst)
		c.free <- ch
		return err
	}
	maxPending := cap(c.free)
	for eof := false; !eof; {
		var ch *chunk
		if len(pending) == 0 {
			select {
			case ch = <-c.free:
			case <-ctx.Done():
				return read, ctx.Err()
			}
		} else {
			// Never wait for a buffer while holding finished ones: write
			// the oldest when it is done and no buffer is free.
			select {
			case ch = <-c.free:
			case <-pending[0].done:
				pending[0].done <- struct{}{}
				if err := flush(); err != nil {
					return read, err
				}
				continue
			case <-ctx.Done():
				return read, ctx.Err()
			}
		}
		if cap(ch.src) < frameBytes {
			ch.src = make([]byte, frameBytes)
		}
		n, err := io.ReadFull(r, ch.src[:frameBytes])
		read += int64(n)
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			eof = true
		case err != nil:
			c.free <- ch
			return read, err
		}
		if n == 0 {
			c.free <- ch
			break
		}
		ch.src = ch.src[:n]
		pending = append(pending, ch)
		c.jobs <- ch
		for len(pending) >= maxPending/2 || (len(pending) > 0 && isDone(pending[0])) {
			if err := flush(); err != nil {
				return read, err
			}
		}
	}
	for len(pending) > 0 {
		if err := flush(); err != nil {
			return read, err
		}
	}
	if _, err := w.Write(endMark[:]); err != nil {
		return read, err
	}
	return read, nil
}

var endMark [4]byte

// isDone tells without blocking whether a chunk's job has finished, leaving
// its signal in place.
func isDone(ch *chunk) bool {
	select {
	case <-ch.done:
		ch.done <- struct{}{}
		return true
	default:
		return false
	}
}

// AppendWire appends the wire form of data (a small block) to dst,
// compressed by one of the workers.
func (c *Compressor) AppendWire(ctx context.Context, dst, data []byte) ([]byte, error) {
	dst = append(dst, c.header...)
	for len(data) > 0 {
		var ch *chunk
		select {
		case ch = <-c.free:
		case <-ctx.Done():
			return dst, ctx.Err()
		}
		n := min(len(data), frameBytes)
		ch.src = append(ch.src[:0], data[:n]...)
		data = data[n:]
		c.jobs <- ch
		<-ch.done
		dst = append(dst, ch.dst...)
		c.free <- ch
	}
	return append(dst, endMark[:]...), nil
}
