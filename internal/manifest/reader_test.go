package manifest

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
)

// refReader is the Reader before it scanned the stream itself: the
// encoding/json Decoder it used is the oracle of FuzzReader.
//
// It decodes a JSON object that holds an "entries" array one entry at
// a time. Every other top-level key is handed to the header function, in
// whatever order the keys come.
type refReader struct {
	dec     *json.Decoder
	header  func(key string, dec *json.Decoder) error
	started bool
	inArray bool
	done    bool
}

// NewReader reads from r; header decodes the value of every key other than
// "entries" (it may be nil to skip them).
func newRefReader(r io.Reader, header func(key string, dec *json.Decoder) error) *refReader {
	return &refReader{dec: json.NewDecoder(r), header: header}
}

// Next returns the next entry, or io.EOF once the object has been read.
func (r *refReader) Next() (*Entry, error) {
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

func (r *refReader) expect(want json.Delim) error {
	tok, err := r.dec.Token()
	if err != nil {
		return fmt.Errorf("manifest: %w", unexpectedEOF(err))
	}
	if tok != want {
		return fmt.Errorf("manifest: got %v, want %v", tok, want)
	}
	return nil
}

// entriesOf reads every entry; ok is false if reading failed.
func entriesOf(next func() (*Entry, error)) (out []*Entry, ok bool) {
	for range 10_000 {
		e, err := next()
		if err == io.EOF {
			return out, true
		}
		if err != nil {
			return out, false
		}
		out = append(out, e)
	}
	return out, true
}

// FuzzReader: the Reader reads any document exactly as encoding/json's
// Decoder does: the same entries, and an error where it fails.
func FuzzReader(f *testing.F) {
	for _, s := range readerSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		got, gotOK := entriesOf(NewReader(strings.NewReader(doc), nil).Next)
		want, wantOK := entriesOf(newRefReader(strings.NewReader(doc), nil).Next)
		if gotOK != wantOK || !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\nReader   %v %s\nDecoder  %v %s", doc, gotOK, dump(got), wantOK, dump(want))
		}
	})
}

// FuzzEntry: what the fast path accepts, json.Unmarshal accepts too, with
// the same result.
func FuzzEntry(f *testing.F) {
	for _, s := range entrySeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		e, ok := fastEntry([]byte(raw))
		if !ok {
			return
		}
		var want Entry
		if err := json.Unmarshal([]byte(raw), &want); err != nil {
			t.Fatalf("fast path accepted %q, json.Unmarshal refuses it: %v", raw, err)
		}
		if !reflect.DeepEqual(*e, want) {
			t.Fatalf("%q: fast path %+v, json.Unmarshal %+v", raw, *e, want)
		}
	})
}

func dump(es []*Entry) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "%+v ", *e)
	}
	return b.String()
}

var entrySeeds = []string{
	`{"path":".","type":"dir","mode":493,"mtime":"2024-01-01T00:00:00Z"}`,
	`{"path":"a/b.txt","type":"file","mode":420,"mtime":"2024-01-01T00:00:00.123456789Z","size":5,"uid":1000,"gid":1000,"blocks":[{"cid":"bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e","size":5}]}`,
	`{"path":"l","type":"symlink","mode":511,"mtime":"2024-01-01T00:00:00+02:00","target":"../x"}`,
	`{"path":"c/b.txt","type":"hardlink","mode":420,"mtime":"2024-01-01T00:00:00Z","size":5,"target":"a/b.txt","blocks":[{"cid":"bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e","size":5}],"changed_during_read":true}`,
	`{"path":"x","changed_during_read":false}`, `{"path":"x","changed_during_read":truex}`, `{"path":"x","changed_during_read" : true }`,
	`{"path":"k.json","type":"file","mode":384,"mtime":"2024-01-01T00:00:00Z","size":5,"blocks":[{"cid":"bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e","size":5}],"encryption":"age","plain_size":3}`,
	`{"encryption":7}`, `{"plain_size":-1}`, `{"plain_size":"1"}`,
	` { "path" : "é" , "blocks" : [ ] , "size" : 0 } `,
	`{"path":"a","blocks":[{"size":1,"cid":"x"},{"cid":"y"}]}`,
	`{"Path":"a"}`, `{"path":"a","path":"b"}`, `{"path":"\u0041"}`, `{"path":null}`, `{"mode":-1}`,
	`{"mode":4294967296}`, `{"size":9223372036854775808}`, `{"size":01}`, `{"size":1.0}`, `{"size":1e2}`,
	`{"mtime":"yesterday"}`, `{"mtime":"2024-01-01T00:00:00"}`, `{"blocks":[{}]}`, `{"blocks":[{"cid":"a","size":1,"extra":2}]}`,
	`{"path":"a",}`, `{"path":"a"}x`, "{\"path\":\"\xff\"}", `{"other":1}`, `{}`, `[]`, `"x"`,
}

var readerSeeds = []string{
	`{"entries":[{"path":".","type":"dir","mode":493,"mtime":"2024-01-01T00:00:00Z"}]}`,
	`{"tags":{"a":"b"},"entries":[{"path":"."},{"path":"a","type":"file","size":1,"blocks":[{"cid":"c","size":1}]}],"id":3}`,
	` { "id" : 1 , "entries" : [ { "path" : "." } , { "path" : "b" } ] } `,
	`{"entries":[]}`, `{"entries":[],"entries":[{"path":"x"}]}`, `{}`, `{"entries":[{"path":"."},]}`,
	`{"entries":[{"path":"."}`, `{"entries":[{"path":"."}}`, `{"a":[1,{"b":"]"}],"entries":[{"path":"\"}"}]}`,
	`{"a":tru,"entries":[]}`, `{"a" "b"}`, `{,"entries":[]}`, `{"entries":[{"path":"."} {"path":"a"}]}`,
	`{"k\u0065y":1,"entries":[{"path":"."}]}`, `{"entries":{"path":"."}}`, `[1]`, ``, `{"entries":[{"PATH":"x"}]}`,
}
