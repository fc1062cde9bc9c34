package ignore

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Files are the ignore files read in every folder, in this order.
var Files = []string{".gitignore", ".ibignore"}

// MaxFileSize bounds an ignore file; a larger one is an error, not a
// silent truncation.
const MaxFileSize = 8 << 20

// Pattern is one parsed line of an ignore file.
type Pattern struct {
	Source string // the ignore file, relative to the walk's root ("a/.gitignore")
	Line   int    // 1-based
	Text   string // the line as written (after trimming)

	pattern  string // what wildmatch sees
	base     string // the folder of the ignore file ("." for the root)
	negative bool
	dirOnly  bool
	noDir    bool // no "/" but a trailing one: match the name at any depth
}

func (p *Pattern) String() string { return fmt.Sprintf("%s:%d:%s", p.Source, p.Line, p.Text) }

// Negative reports a "!" pattern (one that re-includes).
func (p *Pattern) Negative() bool { return p.negative }

// Parse reads the patterns of one ignore file's content. base is the
// file's folder as a manifest path ("." for the root), source its name for
// messages.
func Parse(data []byte, base, source string) []*Pattern {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var out []*Pattern
	line := 0
	for len(data) > 0 {
		line++
		var l []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
			l = bytes.TrimSuffix(l, []byte("\r"))
		} else {
			// git appends the missing final newline; a lone final "\r" stays
			l, data = data, nil
		}
		if len(l) == 0 || l[0] == '#' {
			continue
		}
		text := trimTrailingSpaces(string(l))
		if text == "" {
			continue
		}
		p := &Pattern{Source: source, Line: line, Text: text, base: base}
		s := text
		if s[0] == '!' {
			p.negative = true
			s = s[1:]
		}
		if strings.HasSuffix(s, "/") {
			p.dirOnly = true
			s = s[:len(s)-1]
		}
		p.noDir = !strings.Contains(s, "/")
		if !p.noDir {
			s = strings.TrimPrefix(s, "/") // a leading slash only anchors
		}
		p.pattern = s
		out = append(out, p)
	}
	return out
}

// trimTrailingSpaces drops trailing spaces not escaped with a backslash,
// as git does (tabs stay).
func trimTrailingSpaces(s string) string {
	lastSpace := -1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ':
			if lastSpace < 0 {
				lastSpace = i
			}
		case '\\':
			i++
			if i >= len(s) {
				return s
			}
			lastSpace = -1
		default:
			lastSpace = -1
		}
	}
	if lastSpace >= 0 {
		return s[:lastSpace]
	}
	return s
}

// match reports whether p matches path (a manifest path below p.base).
func (p *Pattern) match(path string, isDir bool) bool {
	if p.dirOnly && !isDir {
		return false
	}
	if p.noDir {
		name := path[strings.LastIndexByte(path, '/')+1:]
		return wildmatch(p.pattern, name, false)
	}
	rel := path
	if p.base != "." {
		if !strings.HasPrefix(path, p.base+"/") {
			return false
		}
		rel = path[len(p.base)+1:]
	}
	return wildmatch(p.pattern, rel, true)
}

// Matcher reads ignore files as a walk enters folders and answers whether
// a path is ignored. It implements scan.Ignorer.
type Matcher struct {
	// Only its own files are read: patterns in a folder apply below it.
	levels []level
	// excludes come from the command line or a preset: patterns of the
	// root that decide before any ignore file.
	excludes []*Pattern
}

type level struct {
	dir      string
	patterns []*Pattern
}

// New returns a matcher with no patterns from files yet. The excludes
// (see Excludes) decide before the ignore files: a path one of them
// matches is ignored (or kept, for a "!" line) whatever the files say.
func New(excludes ...*Pattern) *Matcher { return &Matcher{excludes: excludes} }

// Excludes parses patterns given one per string (a command line's
// --exclude, a preset's list) as lines of an ignore file at the root;
// source names them in messages.
func Excludes(source string, lines []string) []*Pattern {
	var out []*Pattern
	for i, l := range lines {
		for _, p := range Parse([]byte(l), ".", source) {
			p.Line = i + 1
			out = append(out, p)
		}
	}
	return out
}

// EnterDir reads the ignore files of a folder the walk is about to list.
func (m *Matcher) EnterDir(path, abs string) error {
	var pats []*Pattern
	for _, name := range Files {
		f := filepath.Join(abs, name)
		fi, err := os.Lstat(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("ignore file %s: %w", f, err)
		}
		if !fi.Mode().IsRegular() {
			continue // like git, a symlinked ignore file is not followed
		}
		if fi.Size() > MaxFileSize {
			return fmt.Errorf("ignore file %s: larger than %d bytes", f, MaxFileSize)
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("ignore file %s: %w", f, err)
		}
		src := name
		if path != "." {
			src = path + "/" + name
		}
		pats = append(pats, Parse(data, path, src)...)
	}
	m.levels = append(m.levels, level{dir: path, patterns: pats})
	return nil
}

// LeaveDir forgets the patterns of a folder the walk is done with.
func (m *Matcher) LeaveDir(path string) {
	if n := len(m.levels); n > 0 && m.levels[n-1].dir == path {
		m.levels = m.levels[:n-1]
	}
}

// Ignored reports whether path (a child of the last folder entered) is
// left out.
func (m *Matcher) Ignored(path string, isDir bool) bool {
	p := m.Match(path, isDir)
	return p != nil && !p.negative
}

// MatchAny returns the last of pats that matches path (a manifest path),
// or nil; "!" lines count as matches too.
func MatchAny(pats []*Pattern, path string, isDir bool) *Pattern {
	for j := len(pats) - 1; j >= 0; j-- {
		if pats[j].match(path, isDir) {
			return pats[j]
		}
	}
	return nil
}

// Match returns the pattern that decides about path: the last matching
// one of the deepest folder that has a match, or nil.
func (m *Matcher) Match(path string, isDir bool) *Pattern {
	for j := len(m.excludes) - 1; j >= 0; j-- {
		if m.excludes[j].match(path, isDir) {
			return m.excludes[j]
		}
	}
	for i := len(m.levels) - 1; i >= 0; i-- {
		pats := m.levels[i].patterns
		for j := len(pats) - 1; j >= 0; j-- {
			if pats[j].match(path, isDir) {
				return pats[j]
			}
		}
	}
	return nil
}
