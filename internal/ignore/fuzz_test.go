package ignore

import (
	"testing"
)

// FuzzPattern: parsing any ignore file and matching any path with its
// patterns never panics, and never hangs on pathological stars.
func FuzzPattern(f *testing.F) {
	for _, seed := range [][2]string{
		{"*.log\n!keep.log\n", "a/keep.log"},
		{"a/**/b\n", "a/x/y/b"},
		{"[[:alpha:]-z]\n", "q"},
		{"[!]a-]\n", "b"},
		{"\\\n", "\\"},
		{"***/**a**\n", "x/y/zaa"},
		{"[[:nope:]]\n", "a"},
		{"foo/**/\r\n", "foo/bar"},
		{"\xef\xbb\xbf#x\n\\#y  \\ \n", "#y  "},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, content, path string) {
		pats := Parse([]byte(content), ".", ".gitignore")
		if len(path) > 256 {
			path = path[:256]
		}
		for _, p := range pats {
			if len(p.pattern) > 64 {
				continue // exponential backtracking is git's too; keep runs bounded
			}
			p.match(path, true)
			p.match(path, false)
		}
	})
}

// Cases of git's wildmatch rules (gitignore(5) and git's wildmatch tests);
// the whole matcher is checked against git itself in TestMatchesGit.
func TestWildmatchCases(t *testing.T) {
	for _, c := range []struct {
		pattern, text  string
		pathname, want bool
	}{
		{"**/foo", "foo", true, true},
		{"**/foo", "a/b/foo", true, true},
		{"foo/**", "foo", true, false},
		{"foo/**", "foo/a/b", true, true},
		{"a/**/b", "a/b", true, true},
		{"a/**/b", "a/x/y/b", true, true},
		{"a/*/b", "a/x/y/b", true, false},
		{"**foo", "x/foo", true, false},
		{"**foo", "barfoo", true, true},
		{"*.c", "a/b.c", true, false},
		{"*.c", "a/b.c", false, true},
		{"[!0-9]x", "ax", true, true},
		{"[!0-9]x", "1x", true, false},
		{"[^a-c]", "d", true, true},
		{"[[:digit:]]", "7", true, true},
		{"[[:digit:]]", "x", true, false},
		{"[]]", "]", true, true},
		{"[a-]", "-", true, true},
		{"\\*", "*", true, true},
		{"\\*", "x", true, false},
		{"a?c", "a/c", true, false},
		{"a[/]c", "a/c", true, false},
		{"[[:bogus:]]", "b", true, false},
	} {
		if got := wildmatch(c.pattern, c.text, c.pathname); got != c.want {
			t.Errorf("wildmatch(%q, %q, pathname=%v) = %v, want %v", c.pattern, c.text, c.pathname, got, c.want)
		}
	}
}
