//go:build unix

package runas

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Drop gives dirs (created if absent) and what is in them to ids, then
// makes the process run as ids, with no supplementary groups. Only root
// may; as another user Drop does nothing when that user is ids already,
// and fails otherwise.
func Drop(ids IDs, dirs ...string) error {
	if os.Geteuid() != 0 {
		if os.Geteuid() == ids.UID {
			return nil
		}
		return fmt.Errorf("PUID=%d: only root can switch users (running as %d)", ids.UID, os.Geteuid())
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("PUID: %w", err)
		}
		if err := chownTree(d, ids); err != nil {
			return err
		}
	}
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("PGID: setgroups: %w", err)
	}
	if err := syscall.Setgid(ids.GID); err != nil {
		return fmt.Errorf("PGID=%d: %w", ids.GID, err)
	}
	if err := syscall.Setuid(ids.UID); err != nil {
		return fmt.Errorf("PUID=%d: %w", ids.UID, err)
	}
	return nil
}

// chownTree gives root and everything under it to ids, skipping what is
// theirs already (a restart with the same ids touches nothing).
func chownTree(root string, ids IDs) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == ids.UID && int(st.Gid) == ids.GID {
			return nil
		}
		if err := os.Lchown(p, ids.UID, ids.GID); err != nil {
			return fmt.Errorf("PUID: chown %s: %w", p, err)
		}
		return nil
	})
}
