package manifest

import (
	"bytes"
	"unicode/utf8"
)

// fastEntry parses the plain form of an entry: an object of the known keys,
// each at most once, spelled as ib writes them, with string values free of
// escapes and control characters and integers without sign, fraction or
// exponent. It returns false for anything else, which json.Unmarshal then
// reads (or refuses) with its own rules; for what it accepts the result is
// the one json.Unmarshal gives.
func fastEntry(b []byte) (*Entry, bool) {
	s := scanner{b: b}
	if !s.byte('{') {
		return nil, false
	}
	e := &Entry{}
	if s.byte('}') {
		return e, s.end()
	}
	var seen uint16
	for {
		key, ok := s.str()
		if !ok || !s.byte(':') {
			return nil, false
		}
		bit := fieldBit(key)
		if bit == 0 || seen&bit != 0 {
			return nil, false
		}
		seen |= bit
		switch bit {
		case fPath:
			v, ok := s.str()
			if !ok {
				return nil, false
			}
			e.Path = string(v)
		case fType:
			v, ok := s.str()
			if !ok {
				return nil, false
			}
			e.Type = Type(v)
		case fTarget:
			v, ok := s.str()
			if !ok {
				return nil, false
			}
			e.Target = string(v)
		case fMode, fUID, fGID:
			n, ok := s.uint(1<<32 - 1)
			if !ok {
				return nil, false
			}
			switch bit {
			case fMode:
				e.Mode = uint32(n)
			case fUID:
				e.UID = uint32(n)
			default:
				e.GID = uint32(n)
			}
		case fSize:
			n, ok := s.uint(1<<63 - 1)
			if !ok {
				return nil, false
			}
			e.Size = int64(n)
		case fMTime:
			start := s.skipSpace()
			if _, ok := s.str(); !ok {
				return nil, false
			}
			if err := e.MTime.UnmarshalJSON(s.b[start:s.i]); err != nil {
				return nil, false
			}
		case fBlocks:
			if e.Blocks, ok = s.blocks(); !ok {
				return nil, false
			}
		case fChanged:
			if e.ChangedDuringRead, ok = s.boolean(); !ok {
				return nil, false
			}
		case fEncryption:
			v, ok := s.str()
			if !ok {
				return nil, false
			}
			e.Encryption = string(v)
		case fPlainSize:
			n, ok := s.uint(1<<63 - 1)
			if !ok {
				return nil, false
			}
			e.PlainSize = int64(n)
		}
		if s.byte(',') {
			continue
		}
		if s.byte('}') {
			return e, s.end()
		}
		return nil, false
	}
}

const (
	fPath uint16 = 1 << iota
	fType
	fMode
	fMTime
	fSize
	fUID
	fGID
	fTarget
	fBlocks
	fChanged
	fEncryption
	fPlainSize
)

func fieldBit(k []byte) uint16 {
	switch string(k) {
	case "path":
		return fPath
	case "type":
		return fType
	case "mode":
		return fMode
	case "mtime":
		return fMTime
	case "size":
		return fSize
	case "uid":
		return fUID
	case "gid":
		return fGID
	case "target":
		return fTarget
	case "blocks":
		return fBlocks
	case "changed_during_read":
		return fChanged
	case "encryption":
		return fEncryption
	case "plain_size":
		return fPlainSize
	}
	return 0
}

type scanner struct {
	b []byte
	i int
}

func (s *scanner) skipSpace() int {
	for s.i < len(s.b) && isSpace(s.b[s.i]) {
		s.i++
	}
	return s.i
}

// byte consumes c (after white space) if it comes next.
func (s *scanner) byte(c byte) bool {
	s.skipSpace()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) end() bool {
	return s.skipSpace() == len(s.b)
}

// str reads a string without escapes or control characters, in valid
// UTF-8 (json.Unmarshal would replace invalid bytes), and returns its
// content.
func (s *scanner) str() ([]byte, bool) {
	if !s.byte('"') {
		return nil, false
	}
	j := bytes.IndexByte(s.b[s.i:], '"')
	if j < 0 {
		return nil, false
	}
	v := s.b[s.i : s.i+j]
	ascii := true
	for _, c := range v {
		if c < 0x20 || c == '\\' {
			return nil, false
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	if !ascii && !utf8.Valid(v) {
		return nil, false
	}
	s.i += j + 1
	return v, true
}

// boolean reads true or false.
func (s *scanner) boolean() (bool, bool) {
	s.skipSpace()
	for _, w := range []string{"true", "false"} {
		if bytes.HasPrefix(s.b[s.i:], []byte(w)) {
			s.i += len(w)
			if s.i < len(s.b) && !isSpace(s.b[s.i]) && s.b[s.i] != ',' && s.b[s.i] != '}' {
				return false, false
			}
			return w == "true", true
		}
	}
	return false, false
}

// uint reads digits (no sign, no leading zero, no fraction or exponent)
// up to limit.
func (s *scanner) uint(limit uint64) (uint64, bool) {
	s.skipSpace()
	start := s.i
	var n uint64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		d := uint64(s.b[s.i] - '0')
		if n > (limit-d)/10 {
			return 0, false
		}
		n = n*10 + d
		s.i++
	}
	digits := s.i - start
	if digits == 0 || digits > 1 && s.b[start] == '0' {
		return 0, false
	}
	if s.i < len(s.b) {
		if c := s.b[s.i]; c == '.' || c == 'e' || c == 'E' {
			return 0, false
		}
	}
	return n, true
}

// blocks reads [{"cid": …, "size": …}, …] with each key once.
func (s *scanner) blocks() ([]Block, bool) {
	if !s.byte('[') {
		return nil, false
	}
	out := []Block{}
	if s.byte(']') {
		return out, true
	}
	for {
		if !s.byte('{') {
			return nil, false
		}
		var b Block
		var seenCID, seenSize bool
		for {
			key, ok := s.str()
			if !ok || !s.byte(':') {
				return nil, false
			}
			switch {
			case string(key) == "cid" && !seenCID:
				v, ok := s.str()
				if !ok {
					return nil, false
				}
				b.CID, seenCID = string(v), true
			case string(key) == "size" && !seenSize:
				n, ok := s.uint(1<<63 - 1)
				if !ok {
					return nil, false
				}
				b.Size, seenSize = int64(n), true
			default:
				return nil, false
			}
			if s.byte(',') {
				continue
			}
			if s.byte('}') {
				break
			}
			return nil, false
		}
		out = append(out, b)
		if s.byte(',') {
			continue
		}
		if s.byte(']') {
			return out, true
		}
		return nil, false
	}
}
