package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Reader decodes a JSON object that holds an "entries" array one entry at
// a time. Every other top-level key is handed to the header function, in
// whatever order the keys come.
type Reader struct {
	dec     *json.Decoder
	header  func(key string, dec *json.Decoder) error
	started bool
	inArray bool
	done    bool
}

// NewReader reads from r; header decodes the value of every key other than
// "entries" (it may be nil to skip them).
func NewReader(r io.Reader, header func(key string, dec *json.Decoder) error) *Reader {
	return &Reader{dec: json.NewDecoder(r), header: header}
}

// Next returns the next entry, or io.EOF once the object has been read.
func (r *Reader) Next() (*Entry, error) {
	if r.done {
		return nil, io.EOF
	}
	if !r.started {
		r.started = true
		if err := r.expect(json.Delim('{')); err != nil {
			return nil, err
		}
	}
	for {
		if r.inArray {
			if r.dec.More() {
				var e Entry
				if err := r.dec.Decode(&e); err != nil {
					return nil, fmt.Errorf("manifest entry: %w", err)
				}
				return &e, nil
			}
			if err := r.expect(json.Delim(']')); err != nil {
				return nil, err
			}
			r.inArray = false
		}
		tok, err := r.dec.Token()
		if err != nil {
			return nil, fmt.Errorf("manifest: %w", unexpectedEOF(err))
		}
		if tok == json.Delim('}') {
			r.done = true
			return nil, io.EOF
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("manifest: unexpected %v", tok)
		}
		if key == "entries" {
			if err := r.expect(json.Delim('[')); err != nil {
				return nil, err
			}
			r.inArray = true
			continue
		}
		if r.header != nil {
			if err := r.header(key, r.dec); err != nil {
				return nil, fmt.Errorf("manifest %q: %w", key, err)
			}
		} else {
			var skip json.RawMessage
			if err := r.dec.Decode(&skip); err != nil {
				return nil, fmt.Errorf("manifest %q: %w", key, err)
			}
		}
	}
}

func (r *Reader) expect(want json.Delim) error {
	tok, err := r.dec.Token()
	if err != nil {
		return fmt.Errorf("manifest: %w", unexpectedEOF(err))
	}
	if tok != want {
		return fmt.Errorf("manifest: got %v, want %v", tok, want)
	}
	return nil
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
