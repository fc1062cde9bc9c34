// Package runas lets a server started as root (a container's entrypoint)
// run as the user and group that PUID and PGID name, as NAS users expect:
// the data dir is given to them first, then the process drops root.
package runas

import (
	"fmt"
	"strconv"
)

// IDs are a user and group to run as.
type IDs struct{ UID, GID int }

// FromEnv reads PUID and PGID; ok is false when PUID is unset.
func FromEnv(getenv func(string) string) (ids IDs, ok bool, err error) {
	u, g := getenv("PUID"), getenv("PGID")
	if u == "" {
		if g != "" {
			return IDs{}, false, fmt.Errorf("PGID=%s without PUID", g)
		}
		return IDs{}, false, nil
	}
	uid, err := strconv.Atoi(u)
	if err != nil || uid <= 0 || uid > 1<<31-2 {
		return IDs{}, false, fmt.Errorf("PUID=%q: want a user id above 0", u)
	}
	gid := uid
	if g != "" {
		if gid, err = strconv.Atoi(g); err != nil || gid <= 0 || gid > 1<<31-2 {
			return IDs{}, false, fmt.Errorf("PGID=%q: want a group id above 0", g)
		}
	}
	return IDs{UID: uid, GID: gid}, true, nil
}
