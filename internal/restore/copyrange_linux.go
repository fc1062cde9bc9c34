package restore

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// copyRange copies n bytes at srcOff of src to dstOff of dst in
// the kernel (copy_file_range: no bytes through user space, and a reflink
// on file systems that share extents).
func copyRange(dst, src *os.File, srcOff, dstOff, n int64) error {
	in, out := srcOff, dstOff
	for n > 0 {
		k, err := unix.CopyFileRange(int(src.Fd()), &in, int(dst.Fd()), &out, int(min(n, 1<<30)), 0)
		if err != nil {
			return err
		}
		if k == 0 {
			return errors.New("copy_file_range: short copy")
		}
		n -= int64(k)
	}
	return nil
}
