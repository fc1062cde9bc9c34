//go:build !unix

package livedb

// held: elsewhere a held lock is not detected.
func held(string) bool { return false }
