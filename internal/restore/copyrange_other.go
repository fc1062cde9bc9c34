//go:build !linux

package restore

import (
	"errors"
	"os"
)

func copyRange(dst, src *os.File, off, n int64) error {
	return errors.ErrUnsupported
}
