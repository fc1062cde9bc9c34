//go:build linux

package restore_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"ib/internal/ibtest"
	"ib/internal/restore"
)

// Finding 5: what a restore applies of a backup's modes and owners, as a
// careful tar would: setuid/setgid only on files that get the manifest's
// owner, the umask with NoSamePermissions, DEST's own mode kept.
func TestRestorePermissions(t *testing.T) {
	mt := time.Unix(1700000000, 0)
	api, _, id := backedUp(t, 0, func(src string) {
		ibtest.WriteFile(t, filepath.Join(src, "bin", "suid"), []byte("#!/bin/sh\n"), fs.ModeSetuid|0o755, mt)
		ibtest.WriteFile(t, filepath.Join(src, "shared", "open"), []byte("x"), 0o666, mt)
		os.Chmod(filepath.Join(src, "shared"), fs.ModeSetgid|0o777)
		os.Chmod(src, 0o777)
	})
	modeOf := func(p string) fs.FileMode {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	}
	run := func(dst string, opts restore.Options) {
		t.Helper()
		if _, err := restore.Run(context.Background(), api, id, dst, opts); err != nil {
			t.Fatal(err)
		}
	}
	root := os.Geteuid() == 0

	// as another owner (not root, or --no-same-owner): no setuid or setgid
	other := filepath.Join(t.TempDir(), "other")
	run(other, restore.Options{NoSameOwner: true})
	if m := modeOf(filepath.Join(other, "bin", "suid")); m != 0o755 {
		t.Errorf("setuid file restored by another owner: %v, want -rwxr-xr-x", m)
	}
	if m := modeOf(filepath.Join(other, "shared")); m != 0o777 {
		t.Errorf("setgid folder restored by another owner: %v, want 0777 without setgid", m)
	}
	if root {
		// as root with the manifest's owner, every bit
		same := filepath.Join(t.TempDir(), "same")
		run(same, restore.Options{})
		if m := modeOf(filepath.Join(same, "bin", "suid")); m != fs.ModeSetuid|0o755 {
			t.Errorf("setuid file restored as root: %v", m)
		}
		if m := modeOf(filepath.Join(same, "shared")); m != fs.ModeSetgid|0o777 {
			t.Errorf("setgid folder restored as root: %v", m)
		}
		// --chown: every file owned by that user, setuid dropped
		chowned := filepath.Join(t.TempDir(), "chowned")
		run(chowned, restore.Options{Chown: &restore.Owner{UID: 65534, GID: 65534}})
		for _, p := range []string{"bin/suid", "shared/open", "shared", "."} {
			fi, _ := os.Lstat(filepath.Join(chowned, p))
			st := fi.Sys().(*syscall.Stat_t)
			if st.Uid != 65534 || st.Gid != 65534 {
				t.Errorf("--chown: %s owned by %d:%d", p, st.Uid, st.Gid)
			}
		}
		if m := modeOf(filepath.Join(chowned, "bin", "suid")); m != 0o755 {
			t.Errorf("setuid file with --chown: %v", m)
		}
	}

	// NoSamePermissions: the umask applies
	old := syscall.Umask(0o027)
	defer syscall.Umask(old)
	masked := filepath.Join(t.TempDir(), "masked")
	run(masked, restore.Options{NoSamePermissions: true, NoSameOwner: true})
	if m := modeOf(filepath.Join(masked, "shared", "open")); m != 0o640 {
		t.Errorf("0666 file with umask 027: %v, want 0640", m)
	}

	// DEST made by the restore takes the backup's "."; an existing DEST
	// keeps its own mode
	if m := modeOf(other); m != 0o777 {
		t.Errorf("DEST made by the restore: %v, want the backup's 0777", m)
	}
	existing := t.TempDir()
	os.Chmod(existing, 0o750)
	run(existing, restore.Options{NoSameOwner: true})
	if m := modeOf(existing); m != 0o750 {
		t.Errorf("existing DEST: %v, want its own 0750 kept", m)
	}
}
