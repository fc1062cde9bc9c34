//go:build !linux

package restore

import (
	"errors"
	"os"
)

func copyRange(dst, src *os.File, srcOff, dstOff, n int64) error {
	return errors.ErrUnsupported
}
