package ignore

// The results of wildmatch: besides match and no match, the two abort
// results prune the backtracking of "*" exactly as git does.
const (
	wmMatch = iota
	wmNoMatch
	wmAbortAll
	wmAbortToStarStar
)

// wildmatch matches text against pattern the way git's wildmatch does,
// with pathname set (WM_PATHNAME: wildcards do not match "/", "**" rules)
// or not (a "*" then matches anything, "/" included).
func wildmatch(pattern, text string, pathname bool) bool {
	return dowild(pattern, text, pathname) == wmMatch
}

func dowild(p, text string, pathname bool) int {
	pi, ti := 0, 0
	for ; pi < len(p); pi, ti = pi+1, ti+1 {
		pch := p[pi]
		if ti >= len(text) && pch != '*' {
			return wmAbortAll
		}
		var tch byte
		if ti < len(text) {
			tch = text[ti]
		}
		switch pch {
		case '\\':
			// a literal next character; a trailing backslash matches nothing
			pi++
			if pi >= len(p) || tch != p[pi] {
				return wmNoMatch
			}
		case '?':
			if pathname && tch == '/' {
				return wmNoMatch
			}
		case '*':
			var matchSlash bool
			if pi+1 < len(p) && p[pi+1] == '*' {
				prev := pi - 1
				pi++
				for pi+1 < len(p) && p[pi+1] == '*' {
					pi++
				}
				next := pi + 1 // first byte after the stars
				if (prev < 0 || p[prev] == '/') &&
					(next >= len(p) || p[next] == '/' || (p[next] == '\\' && next+1 < len(p) && p[next+1] == '/')) {
					// "**/" may match no folder at all: try the rest first.
					if next < len(p) && p[next] == '/' && dowild(p[next+1:], text[ti:], pathname) == wmMatch {
						return wmMatch
					}
					matchSlash = true
				} else {
					matchSlash = !pathname
				}
			} else {
				matchSlash = !pathname
			}
			next := pi + 1
			if next >= len(p) {
				// A trailing "**" matches everything, a trailing "*" only
				// the rest of one name.
				if !matchSlash && indexByte(text[ti:], '/') >= 0 {
					return wmNoMatch
				}
				return wmMatch
			}
			if !matchSlash && p[next] == '/' {
				// one "*" then "/": skip to the next slash of the text
				s := indexByte(text[ti:], '/')
				if s < 0 {
					return wmNoMatch
				}
				ti += s
				pi = next
				if tch = text[ti]; tch != p[pi] {
					return wmNoMatch
				}
				continue
			}
			for {
				if ti >= len(text) {
					break
				}
				// Fast forward to the literal that follows the star.
				if !isGlobSpecial(p[next]) {
					lit := p[next]
					for ti < len(text) && (matchSlash || text[ti] != '/') && text[ti] != lit {
						ti++
					}
					if ti >= len(text) || text[ti] != lit {
						return wmNoMatch
					}
				}
				m := dowild(p[next:], text[ti:], pathname)
				if m != wmNoMatch {
					if !matchSlash || m != wmAbortToStarStar {
						return m
					}
				} else if !matchSlash && text[ti] == '/' {
					return wmAbortToStarStar
				}
				ti++
			}
			return wmAbortAll
		case '[':
			m, np, ok := matchClass(p, pi, tch)
			if !ok {
				return wmAbortAll
			}
			pi = np
			if !m || (pathname && tch == '/') {
				return wmNoMatch
			}
		default:
			if tch != pch {
				return wmNoMatch
			}
		}
	}
	if ti < len(text) {
		return wmNoMatch
	}
	return wmMatch
}

// matchClass matches one character against the bracket expression that
// starts at p[pi] == '['. It returns whether it matched, the index of the
// closing ']', and ok=false for a malformed expression (which makes the
// whole pattern fail, as in git).
func matchClass(p string, pi int, tch byte) (matched bool, end int, ok bool) {
	at := func(i int) byte {
		if i < len(p) {
			return p[i]
		}
		return 0
	}
	pi++
	pch := at(pi)
	if pch == '!' {
		pch = '^'
	}
	negated := pch == '^'
	if negated {
		pi++
		pch = at(pi)
	}
	var prev byte
	for {
		if pch == 0 {
			return false, 0, false
		}
		switch {
		case pch == '\\':
			pi++
			pch = at(pi)
			if pch == 0 {
				return false, 0, false
			}
			if tch == pch {
				matched = true
			}
		case pch == '-' && prev != 0 && at(pi+1) != 0 && at(pi+1) != ']':
			pi++
			pch = at(pi)
			if pch == '\\' {
				pi++
				pch = at(pi)
				if pch == 0 {
					return false, 0, false
				}
			}
			if tch <= pch && tch >= prev {
				matched = true
			}
			pch = 0 // a range ends: no range may start from its end
		case pch == '[' && at(pi+1) == ':':
			s := pi + 2
			q := s
			for at(q) != 0 && at(q) != ']' {
				q++
			}
			if at(q) == 0 {
				return false, 0, false
			}
			if q-s-1 < 0 || p[q-1] != ':' {
				// no ":]": a plain '[' in the set
				pi = s - 2
				pch = '['
				if tch == pch {
					matched = true
				}
				break
			}
			in, known := posixClass(p[s:q-1], tch)
			if !known {
				return false, 0, false
			}
			if in {
				matched = true
			}
			pi = q
			pch = 0
		default:
			if tch == pch {
				matched = true
			}
		}
		prev = pch
		pi++
		pch = at(pi)
		if pch == ']' {
			break
		}
	}
	return matched != negated, pi, true
}

func posixClass(name string, c byte) (in, known bool) {
	switch name {
	case "alnum":
		return isAlpha(c) || isDigit(c), true
	case "alpha":
		return isAlpha(c), true
	case "blank":
		return c == ' ' || c == '\t', true
	case "cntrl":
		return c < 0x20 || c == 0x7f, true
	case "digit":
		return isDigit(c), true
	case "graph":
		return c > 0x20 && c < 0x7f, true
	case "lower":
		return c >= 'a' && c <= 'z', true
	case "print":
		return c >= 0x20 && c < 0x7f, true
	case "punct":
		return c > 0x20 && c < 0x7f && !isAlpha(c) && !isDigit(c), true
	case "space":
		return c == ' ' || (c >= '\t' && c <= '\r'), true
	case "upper":
		return c >= 'A' && c <= 'Z', true
	case "xdigit":
		return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'), true
	}
	return false, false
}

func isAlpha(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isGlobSpecial(c byte) bool { return c == '*' || c == '?' || c == '[' || c == '\\' }

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}
