//go:build !unix

package runas

import "errors"

// Drop is unsupported off Unix.
func Drop(IDs, ...string) error { return errors.New("PUID/PGID: only on Unix") }
