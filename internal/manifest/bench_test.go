package manifest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	"ib/internal/manifest"
)

// benchManifest is a manifest of n files of one block each in folders of
// 100, as the client spools it and the server reads it.
func benchManifest(n int) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	buf.WriteString(`{"tags":{"node":"bench"},"entries":[`)
	mt := time.Unix(1700000000, 123456789).UTC()
	enc.Encode(manifest.Entry{Path: ".", Type: manifest.TypeDir, Mode: 0o755, MTime: mt})
	for d := range n / 100 {
		buf.WriteByte(',')
		enc.Encode(manifest.Entry{Path: fmt.Sprintf("d%04d", d), Type: manifest.TypeDir, Mode: 0o755, MTime: mt})
		for i := range 100 {
			buf.WriteByte(',')
			enc.Encode(manifest.Entry{Path: fmt.Sprintf("d%04d/f%06d.json", d, i), Type: manifest.TypeFile, Mode: 0o644, MTime: mt,
				Size: 4000, UID: 1000, GID: 1000, Blocks: []manifest.Block{{CID: "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e", Size: 4000}}})
		}
	}
	buf.WriteString("]}")
	return buf.Bytes()
}

// BenchmarkManifestEncode: the client's spooling of 10,000 entries.
func BenchmarkManifestEncode(b *testing.B) {
	mt := time.Unix(1700000000, 123456789).UTC()
	e := manifest.Entry{Path: "d0001/f000001.json", Type: manifest.TypeFile, Mode: 0o644, MTime: mt, Size: 4000,
		Blocks: []manifest.Block{{CID: "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e", Size: 4000}}}
	b.Run("AppendJSON", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			for range 10_000 {
				var err error
				if buf, err = manifest.AppendJSON(buf[:0], &e); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		enc := json.NewEncoder(io.Discard)
		for b.Loop() {
			for range 10_000 {
				if err := enc.Encode(&e); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkManifestReadValidate: streaming and validating 10,000 entries,
// what the server does first with every commit and the client with the
// previous manifest.
func BenchmarkManifestReadValidate(b *testing.B) {
	data := benchManifest(10_000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r := manifest.NewReader(bytes.NewReader(data), func(k string, dec *json.Decoder) error {
			var v any
			return dec.Decode(&v)
		})
		var v manifest.Validator
		for {
			e, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if err := v.Add(e); err != nil {
				b.Fatal(err)
			}
		}
		if v.Count() != 10_101 {
			b.Fatalf("%d entries", v.Count())
		}
	}
}
