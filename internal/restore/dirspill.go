package restore

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"ib/internal/manifest"
)

// dirSpill keeps the folders whose metadata a restore applies last, on
// disk rather than in memory (a backup may hold millions of folders, and
// the manifest comes from a server the client does not trust). Each record
// is an entry as JSON followed by its length, so the file reads backwards:
// deepest folders first, as the walk order requires.
type dirSpill struct {
	f *os.File
	w *bufio.Writer
	n int
}

func newDirSpill() (*dirSpill, error) {
	f, err := os.CreateTemp("", "ib-restore-dirs-*")
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	os.Remove(f.Name()) // unlinked: gone with the process
	return &dirSpill{f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

// add records a folder.
func (d *dirSpill) add(e manifest.Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(b)))
	if _, err := d.w.Write(b); err != nil {
		return fmt.Errorf("restore: spill folders: %w", err)
	}
	d.n++
	return nil
}

// backward calls fn for every folder, the last added first.
func (d *dirSpill) backward(fn func(manifest.Entry) error) error {
	if err := d.w.Flush(); err != nil {
		return fmt.Errorf("restore: spill folders: %w", err)
	}
	end, err := d.f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	var buf []byte
	for end > 0 {
		var l [4]byte
		if _, err := d.f.ReadAt(l[:], end-4); err != nil {
			return fmt.Errorf("restore: read folders: %w", err)
		}
		n := int64(binary.BigEndian.Uint32(l[:]))
		if n > end-4 {
			return errors.New("restore: folder spill damaged")
		}
		buf = append(buf[:0], make([]byte, n)...)
		if _, err := d.f.ReadAt(buf, end-4-n); err != nil {
			return fmt.Errorf("restore: read folders: %w", err)
		}
		var e manifest.Entry
		if err := json.Unmarshal(buf, &e); err != nil {
			return fmt.Errorf("restore: read folders: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
		end -= 4 + n
	}
	return nil
}

func (d *dirSpill) close() { d.f.Close() }
