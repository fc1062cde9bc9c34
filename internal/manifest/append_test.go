package manifest_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"ib/internal/manifest"
)

// appendCases are entries of every shape: each type, each optional field,
// names that need escaping, times in zones and at the ends of the range.
func appendCases() []manifest.Entry {
	mt := time.Unix(1700000000, 123456789).UTC()
	cid := "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
	blocks := []manifest.Block{{CID: cid, Size: 4000}, {CID: cid, Size: 1}}
	var out []manifest.Entry
	for _, name := range []string{".", "a/b.txt", `q"uote`, `back\slash`, "tab\tname", "<html>&", "ünïcode/名前", "\u2028sep", "bad\xffutf8", ""} {
		out = append(out,
			manifest.Entry{Path: name, Type: manifest.TypeDir, Mode: 0o755, MTime: mt},
			manifest.Entry{Path: name, Type: manifest.TypeFile, Mode: 0o4755, MTime: mt, Size: 4001, UID: 1000, GID: 4294967295, Blocks: blocks},
			manifest.Entry{Path: name, Type: manifest.TypeSymlink, Mode: 0o777, MTime: mt, Target: name},
			manifest.Entry{Path: "x", Type: manifest.TypeHardlink, MTime: mt, Target: name, Size: 1, Blocks: []manifest.Block{{CID: name, Size: -1}}},
		)
	}
	for _, t := range []time.Time{
		time.Unix(0, 0), time.Unix(1700000000, 0).In(time.FixedZone("x", 5*3600+30*60)),
		time.Unix(1700000000, 1).In(time.FixedZone("y", -(23*3600 + 59*60 + 59))),
		time.Unix(1700000000, 1).In(time.FixedZone("z", 24*3600)),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), {}, time.Now(),
	} {
		out = append(out, manifest.Entry{Path: "t", Type: manifest.TypeFile, MTime: t})
	}
	return append(out,
		manifest.Entry{Path: "c", Type: manifest.TypeFile, MTime: mt, Size: 7, ChangedDuringRead: true, Blocks: blocks[:1]},
		manifest.Entry{Path: "e", Type: manifest.TypeFile, MTime: mt, Size: 4033, Encryption: "age", PlainSize: 7, Blocks: blocks[:1]},
		manifest.Entry{Path: "n", Type: manifest.TypeFile, MTime: mt, Size: -5, PlainSize: -1, Encryption: "a\"ge"},
	)
}

// TestAppendJSONIsMarshal: AppendJSON writes the bytes json.Marshal
// writes (and fails where it fails), after whatever was in the buffer.
func TestAppendJSONIsMarshal(t *testing.T) {
	fast := 0
	for _, e := range appendCases() {
		want, werr := json.Marshal(&e)
		got, gerr := manifest.AppendJSON([]byte("prefix"), &e)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%+v: json.Marshal error %v, AppendJSON error %v", e, werr, gerr)
		}
		if werr != nil {
			continue
		}
		if !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Fatalf("%+v:\nAppendJSON   %s\njson.Marshal %s", e, got[6:], want)
		}
		if bytes.HasPrefix(got[6:], []byte(`{"path":"`)) && !bytes.Contains(want, []byte(`\`)) {
			fast++
		}
	}
	if fast < 10 {
		t.Fatalf("only %d entries took the plain path", fast)
	}
}

// FuzzAppendJSON: for any names, sizes and times, AppendJSON and
// json.Marshal agree.
func FuzzAppendJSON(f *testing.F) {
	f.Add("a/b", "file", "t", "bafkrei", "age", int64(5), int64(1700000000), int64(7), 3600, true)
	f.Fuzz(func(t *testing.T, path, typ, target, cid, enc string, size, sec, nsec int64, zone int, changed bool) {
		e := manifest.Entry{Path: path, Type: manifest.Type(typ), Mode: uint32(size), MTime: time.Unix(sec, nsec).In(time.FixedZone("f", zone)),
			Size: size, UID: uint32(sec), GID: uint32(nsec), Target: target, ChangedDuringRead: changed, Encryption: enc, PlainSize: nsec}
		if cid != "" {
			e.Blocks = []manifest.Block{{CID: cid, Size: size}}
		}
		want, werr := json.Marshal(&e)
		got, gerr := manifest.AppendJSON(nil, &e)
		if (werr == nil) != (gerr == nil) || werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON %s, %v\njson.Marshal %s, %v", got, gerr, want, werr)
		}
	})
}
