//go:build !unix

package alerts

import "errors"

func freeSpace(string) (free, total uint64, err error) {
	return 0, 0, errors.New("free space: not measured on this system")
}
