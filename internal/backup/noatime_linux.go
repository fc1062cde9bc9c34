package backup

import "syscall"

// oNoAtime keeps a backup's reads from writing every file's inode.
const oNoAtime = syscall.O_NOATIME
