//go:build race

package chunk

// raceEnabled: the race detector slows the cut ~8×; the long tests check
// fewer cases under it (the plain test run checks them all).
const raceEnabled = true
