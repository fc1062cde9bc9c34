//go:build windows

package restore

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// lutimes is not done on Windows, where symlinks are rare and need
// privileges.
func lutimesAt(*os.Root, string, time.Time) error { return nil }

func umask() uint32 { return 0 }

var reserved = map[string]bool{"CON": true, "PRN": true, "AUX": true, "NUL": true,
	"COM1": true, "COM2": true, "COM3": true, "COM4": true, "COM5": true, "COM6": true, "COM7": true, "COM8": true, "COM9": true,
	"LPT1": true, "LPT2": true, "LPT3": true, "LPT4": true, "LPT5": true, "LPT6": true, "LPT7": true, "LPT8": true, "LPT9": true}

// localName reports names that cannot exist on Windows, so that they are
// reported rather than silently mangled.
func localName(p string) error {
	if p == "." {
		return nil
	}
	for part := range strings.SplitSeq(p, "/") {
		if strings.ContainsAny(part, `<>:"|?*`) || strings.ContainsFunc(part, func(r rune) bool { return r < 32 }) {
			return fmt.Errorf("name %q holds a character Windows forbids", part)
		}
		if strings.HasSuffix(part, ".") || strings.HasSuffix(part, " ") {
			return fmt.Errorf("name %q ends with a dot or space", part)
		}
		base, _, _ := strings.Cut(part, ".")
		if reserved[strings.ToUpper(base)] {
			return fmt.Errorf("name %q is reserved on Windows", part)
		}
	}
	return nil
}
