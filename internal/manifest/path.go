package manifest

import (
	"errors"
	"fmt"
	"strings"
)

// Limits on paths, as on common file systems.
const (
	MaxNameLen = 255
	MaxPathLen = 4096
)

// ErrBadPath reports a path that a manifest may not hold.
var ErrBadPath = errors.New("invalid path")

// CheckPath accepts "." and relative slash-separated paths whose parts are
// non-empty, not "." or "..", and free of NUL and backslash (a separator on
// Windows).
func CheckPath(p string) error {
	if p == "." {
		return nil
	}
	if p == "" || len(p) > MaxPathLen {
		return fmt.Errorf("%w %q: empty or longer than %d bytes", ErrBadPath, p, MaxPathLen)
	}
	if p[0] == '/' {
		return fmt.Errorf("%w %q: absolute", ErrBadPath, p)
	}
	for part := range strings.SplitSeq(p, "/") {
		switch {
		case part == "":
			return fmt.Errorf("%w %q: empty part", ErrBadPath, p)
		case part == "." || part == "..":
			return fmt.Errorf("%w %q: %q part", ErrBadPath, p, part)
		case len(part) > MaxNameLen:
			return fmt.Errorf("%w %q: a name longer than %d bytes", ErrBadPath, p, MaxNameLen)
		case strings.ContainsAny(part, "\x00\\"):
			return fmt.Errorf("%w %q: NUL or backslash", ErrBadPath, p)
		}
	}
	return nil
}

// Compare orders paths in walk order: "." first, then component by
// component, names compared bytewise, so "a/b" < "a.txt" < "b". It returns
// -1, 0 or +1.
func Compare(a, b string) int {
	if a == b {
		return 0
	}
	if a == "." {
		return -1
	}
	if b == "." {
		return 1
	}
	// Component-wise order is bytewise order with '/' sorting below every
	// byte a name can hold.
	n := min(len(a), len(b))
	for i := range n {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if ca == '/' {
			return -1
		}
		if cb == '/' {
			return 1
		}
		if ca < cb {
			return -1
		}
		return 1
	}
	if len(a) < len(b) {
		return -1
	}
	return 1
}

// Parent returns the directory holding p: "." for a top-level name.
func Parent(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return "."
}

// Join joins a directory path of the manifest and a name.
func Join(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

// Within reports whether p is sub itself or lies below it.
func Within(p, sub string) bool {
	return sub == "." || p == sub || strings.HasPrefix(p, sub+"/")
}
