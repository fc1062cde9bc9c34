package manifest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Reader decodes a JSON object that holds an "entries" array one entry at
// a time. Every other top-level key is handed to the header function, in
// whatever order the keys come.
//
// It scans the stream itself rather than through encoding/json's Decoder:
// decoding manifests was most of a no-change backup's time on both sides.
// Each entry's bytes are cut out of the stream and parsed by a fast path
// that accepts only the plain form ib writes (known keys, no escapes, no
// nulls); anything else goes to json.Unmarshal, so what is accepted, and how,
// is what encoding/json decides (FuzzEntry checks that the two agree).
type Reader struct {
	br      *bufio.Reader
	header  func(key string, dec *json.Decoder) error
	started bool
	inArray bool
	done    bool
	members int // top-level keys read
	items   int // entries read from the current array
	val     []byte
}

// NewReader reads from r; header decodes the value of every key other than
// "entries" (it may be nil to skip them).
func NewReader(r io.Reader, header func(key string, dec *json.Decoder) error) *Reader {
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < 64<<10 {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &Reader{br: br, header: header}
}

// Next returns the next entry, or io.EOF once the object has been read.
func (r *Reader) Next() (*Entry, error) {
	if r.done {
		return nil, io.EOF
	}
	if !r.started {
		r.started = true
		if err := r.expect('{'); err != nil {
			return nil, err
		}
	}
	for {
		if r.inArray {
			c, err := r.nonSpace()
			if err != nil {
				return nil, err
			}
			if c == ']' {
				r.inArray = false
				continue
			}
			if r.items > 0 {
				if c != ',' {
					return nil, fmt.Errorf("manifest: got %q after an entry, want , or ]", c)
				}
			} else if err := r.br.UnreadByte(); err != nil {
				return nil, err
			}
			raw, err := r.value()
			if err != nil {
				return nil, err
			}
			r.items++
			return decodeEntry(raw)
		}
		c, err := r.nonSpace()
		if err != nil {
			return nil, err
		}
		if c == '}' {
			r.done = true
			return nil, io.EOF
		}
		if r.members > 0 {
			if c != ',' {
				return nil, fmt.Errorf("manifest: got %q after a value, want , or }", c)
			}
			if c, err = r.nonSpace(); err != nil {
				return nil, err
			}
		}
		if c != '"' {
			return nil, fmt.Errorf("manifest: got %q, want a key", c)
		}
		r.br.UnreadByte()
		raw, err := r.value()
		if err != nil {
			return nil, err
		}
		var key string
		if err := json.Unmarshal(raw, &key); err != nil {
			return nil, fmt.Errorf("manifest: key: %w", err)
		}
		if err := r.expect(':'); err != nil {
			return nil, err
		}
		r.members++
		if key == "entries" {
			if err := r.expect('['); err != nil {
				return nil, err
			}
			r.inArray, r.items = true, 0
			continue
		}
		raw, err = r.value()
		if err != nil {
			return nil, err
		}
		if r.header != nil {
			if err := r.header(key, json.NewDecoder(bytes.NewReader(raw))); err != nil {
				return nil, fmt.Errorf("manifest %q: %w", key, err)
			}
		} else if !json.Valid(raw) {
			return nil, fmt.Errorf("manifest %q: not a JSON value", key)
		}
	}
}

func decodeEntry(raw []byte) (*Entry, error) {
	if e, ok := fastEntry(raw); ok {
		return e, nil
	}
	var e Entry
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("manifest entry: %w", err)
	}
	return &e, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }

// nonSpace reads the next byte that is not white space.
func (r *Reader) nonSpace() (byte, error) {
	for {
		c, err := r.br.ReadByte()
		if err != nil {
			return 0, fmt.Errorf("manifest: %w", unexpectedEOF(err))
		}
		if !isSpace(c) {
			return c, nil
		}
	}
}

func (r *Reader) expect(want byte) error {
	c, err := r.nonSpace()
	if err != nil {
		return err
	}
	if c != want {
		return fmt.Errorf("manifest: got %q, want %q", c, want)
	}
	return nil
}

// maxValue bounds one value (an entry of a file of 1,000,000 blocks is
// about 80 MB).
const maxValue = 256 << 20

// value cuts the next JSON value out of the stream: strings, objects and
// arrays to their end, other literals to the next delimiter. Whether the
// bytes are valid JSON is for the parser that reads them to decide. The
// slice is valid until the next call.
func (r *Reader) value() ([]byte, error) {
	r.val = r.val[:0]
	c, err := r.nonSpace()
	if err != nil {
		return nil, err
	}
	depth := 0
	for {
		if len(r.val) > maxValue {
			return nil, fmt.Errorf("manifest: a value longer than %d bytes", maxValue)
		}
		switch c {
		case '"':
			r.val = append(r.val, c)
			if err := r.stringBody(); err != nil {
				return nil, err
			}
		case '{', '[':
			depth++
			r.val = append(r.val, c)
		case '}', ']':
			if depth == 0 {
				return nil, fmt.Errorf("manifest: unexpected %q", c)
			}
			depth--
			r.val = append(r.val, c)
		default:
			if depth == 0 { // a literal: up to the next delimiter
				r.val = append(r.val, c)
				for {
					c, err = r.br.ReadByte()
					if err != nil {
						return nil, fmt.Errorf("manifest: %w", unexpectedEOF(err))
					}
					if c == ',' || c == '}' || c == ']' || isSpace(c) {
						r.br.UnreadByte()
						return r.val, nil
					}
					r.val = append(r.val, c)
				}
			}
			r.val = append(r.val, c)
		}
		if depth == 0 {
			return r.val, nil
		}
		if c, err = r.br.ReadByte(); err != nil {
			return nil, fmt.Errorf("manifest: %w", unexpectedEOF(err))
		}
	}
}

// stringBody appends a string's bytes up to and including its closing
// quote (one not escaped by an odd number of backslashes).
func (r *Reader) stringBody() error {
	for {
		chunk, err := r.br.ReadSlice('"')
		r.val = append(r.val, chunk...)
		if err == bufio.ErrBufferFull {
			if len(r.val) > maxValue {
				return fmt.Errorf("manifest: a string longer than %d bytes", maxValue)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("manifest: %w", unexpectedEOF(err))
		}
		n := 0
		for i := len(r.val) - 2; i >= 0 && r.val[i] == '\\'; i-- {
			n++
		}
		if n%2 == 0 {
			return nil
		}
	}
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
