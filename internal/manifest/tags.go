package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Tags are the key=value pairs that label a backup.
type Tags map[string]string

// MaxTagValueLen bounds a tag value.
const MaxTagValueLen = 256

// ErrBadTag reports an invalid tag key or value.
var ErrBadTag = errors.New("invalid tag")

var tagKey = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)

// CheckTag validates one key and value.
func CheckTag(key, value string) error {
	if len(key) > MaxTagValueLen || !tagKey.MatchString(key) {
		return fmt.Errorf("%w key %q: want lower-case letters, digits, '_', '.', '-', starting with a letter or digit", ErrBadTag, key)
	}
	if value == "" || len(value) > MaxTagValueLen {
		return fmt.Errorf("%w %s=%q: the value must be 1 to %d bytes", ErrBadTag, key, value, MaxTagValueLen)
	}
	if !utf8.ValidString(value) || strings.ContainsFunc(value, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%w %s=%q: control characters or invalid UTF-8", ErrBadTag, key, value)
	}
	return nil
}

// ParseTag parses "key=value".
func ParseTag(s string) (string, string, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return "", "", fmt.Errorf("%w %q: want KEY=VALUE", ErrBadTag, s)
	}
	if err := CheckTag(k, v); err != nil {
		return "", "", err
	}
	return k, v, nil
}

// Check validates every pair.
func (t Tags) Check() error {
	for k, v := range t {
		if err := CheckTag(k, v); err != nil {
			return err
		}
	}
	return nil
}

// Canonical is a string equal for equal tag sets and different otherwise.
func (t Tags) Canonical() string {
	if t == nil {
		t = Tags{}
	}
	b, _ := json.Marshal(map[string]string(t)) // map keys are sorted
	return string(b)
}

// Matches reports whether every pair of filter is in t.
func (t Tags) Matches(filter Tags) bool {
	for k, v := range filter {
		if t[k] != v {
			return false
		}
	}
	return true
}

// String renders the tags as sorted "k=v" pairs separated by spaces.
func (t Tags) String() string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + quoteValue(t[k])
	}
	return strings.Join(parts, " ")
}

// quoteValue quotes a tag value that a reader could not tell apart in a
// list of tags: one with spaces, quotes, backslashes or control characters.
func quoteValue(v string) string {
	if strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == '"' || r == '\\' || r == 0x7f || !unicode.IsPrint(r) }) {
		return strconv.Quote(v)
	}
	return v
}

// MaxLabels bounds the labels of one backup.
const MaxLabels = 64

// CheckLabels validates a backup's labels: pairs as tags are, at most
// MaxLabels of them.
func (t Tags) CheckLabels() error {
	if len(t) > MaxLabels {
		return fmt.Errorf("%w: %d labels, at most %d", ErrBadTag, len(t), MaxLabels)
	}
	for k, v := range t {
		if err := CheckTag(k, v); err != nil {
			return fmt.Errorf("label: %w", err)
		}
	}
	return nil
}
