package store

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"ib/internal/manifest"
)

// The commit spools the entries it has validated in a compact binary form,
// read back once by the same call: decoding the JSON a second time cost as
// much as writing the rows. Each entry is its length (uvarint) and its
// fields; strings are a uvarint length and the bytes.

func appendEntry(b []byte, e *manifest.Entry) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0) // length, filled in below
	b = appendString(b, e.Path)
	b = appendString(b, string(e.Type))
	b = binary.AppendUvarint(b, uint64(e.Mode))
	b = binary.AppendVarint(b, e.MTime.Unix())
	b = binary.AppendUvarint(b, uint64(e.MTime.Nanosecond()))
	b = binary.AppendVarint(b, e.Size)
	b = binary.AppendUvarint(b, uint64(e.UID))
	b = binary.AppendUvarint(b, uint64(e.GID))
	b = appendString(b, e.Target)
	b = binary.AppendUvarint(b, uint64(len(e.Blocks)))
	for _, bl := range e.Blocks {
		b = appendString(b, bl.CID)
		b = binary.AppendVarint(b, bl.Size)
	}
	b = appendString(b, e.Encryption)
	b = binary.AppendVarint(b, e.PlainSize)
	changed := byte(0)
	if e.ChangedDuringRead {
		changed = 1
	}
	b = append(b, changed)
	binary.LittleEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// entryReader reads back what appendEntry wrote.
type entryReader struct {
	r   *bufio.Reader
	buf []byte
}

var errSpool = errors.New("commit spool: corrupt entry")

func (er *entryReader) next() (*manifest.Entry, error) {
	var n [4]byte
	if _, err := io.ReadFull(er.r, n[:]); err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("commit spool: %w", err)
	}
	size := binary.LittleEndian.Uint32(n[:])
	if cap(er.buf) < int(size) {
		er.buf = make([]byte, size)
	}
	p := er.buf[:size]
	if _, err := io.ReadFull(er.r, p); err != nil {
		return nil, fmt.Errorf("commit spool: %w", err)
	}
	d := decoder{p: p}
	e := &manifest.Entry{Path: d.str(), Type: manifest.Type(d.str()), Mode: uint32(d.uvarint())}
	sec := d.varint()
	e.MTime = time.Unix(sec, int64(d.uvarint())).UTC()
	e.Size = d.varint()
	e.UID = uint32(d.uvarint())
	e.GID = uint32(d.uvarint())
	e.Target = d.str()
	if nb := d.uvarint(); nb > 0 && d.err == nil {
		e.Blocks = make([]manifest.Block, 0, min(nb, uint64(len(p))))
		for range nb {
			e.Blocks = append(e.Blocks, manifest.Block{CID: d.str(), Size: d.varint()})
			if d.err != nil {
				break
			}
		}
	}
	e.Encryption = d.str()
	e.PlainSize = d.varint()
	if d.err != nil || len(d.p) != 1 || d.p[0] > 1 {
		return nil, errSpool
	}
	e.ChangedDuringRead = d.p[0] == 1
	return e, nil
}

// errEachDone, returned by each's fn, stops each without an error.
var errEachDone = errors.New("done")

// each calls fn for every entry, numbered from 0, until the spool ends or
// fn returns an error (errEachDone to stop early: each then returns nil).
func (er *entryReader) each(fn func(seq int64, e *manifest.Entry) error) error {
	for seq := int64(0); ; seq++ {
		e, err := er.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(seq, e); err == errEachDone {
			return nil
		} else if err != nil {
			return err
		}
	}
}

type decoder struct {
	p   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	v, k := binary.Uvarint(d.p)
	if k <= 0 {
		d.err = errSpool
		return 0
	}
	d.p = d.p[k:]
	return v
}

func (d *decoder) varint() int64 {
	v, k := binary.Varint(d.p)
	if k <= 0 {
		d.err = errSpool
		return 0
	}
	d.p = d.p[k:]
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.p)) {
		d.err = errSpool
		return ""
	}
	s := string(d.p[:n])
	d.p = d.p[n:]
	return s
}
