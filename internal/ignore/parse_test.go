package ignore_test

import "ib/internal/ignore"

func texts(s string) []string {
	var out []string
	for _, p := range ignore.Parse([]byte(s), ".", ".gitignore") {
		out = append(out, p.Text)
	}
	return out
}
