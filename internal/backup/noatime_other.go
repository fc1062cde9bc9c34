//go:build unix && !linux

package backup

const oNoAtime = 0
