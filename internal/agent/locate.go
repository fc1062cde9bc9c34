package agent

import (
	"strings"
)

// locator finds the line of a key in the i-th table of an array of tables
// ([[set]], [[notify]]), for errors found after decoding: go-toml reports
// positions of syntax errors and unknown keys, not of values a check
// refuses later.
type locator struct {
	lines []string
}

func newLocator(b []byte) *locator {
	return &locator{lines: strings.Split(string(b), "\n")}
}

// line is the 1-based line of key in the i-th [[table]], or of that
// table's header when the key is not written there (missing, or "").
func (l *locator) line(table string, i int, key string) int {
	header := "[[" + table + "]]"
	n, start := -1, -1
	for j, raw := range l.lines {
		s := strings.TrimSpace(raw)
		if strings.HasPrefix(s, "[") {
			if start >= 0 {
				break // the next table: the key is not in this one
			}
			if strings.ReplaceAll(strings.SplitN(s, "#", 2)[0], " ", "") == header {
				if n++; n == i {
					start = j
				}
			}
			continue
		}
		if start >= 0 && key != "" {
			k, _, ok := strings.Cut(s, "=")
			if ok && strings.Trim(strings.TrimSpace(k), `"'`) == key {
				return j + 1
			}
		}
	}
	return start + 1
}
