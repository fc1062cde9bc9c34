package backup

import (
	"ib/internal/manifest"
	"ib/internal/progress"
)

// estimate gives an incremental backup its totals without a second walk:
// what the walk has met so far, plus what the previous backup has past the
// point the walk has reached. It is exact for the part walked and for an
// unchanged rest, and exact once the walk ends. The prescan it replaces
// walked the folder a second time: 15% of the client's CPU in a backup of
// no change or of 5% changed files on the benchmark dataset, on two cores
// shared with the server.
type estimate struct {
	c *progress.Counters
	// prevFiles, prevBytes: the previous backup's totals; readFiles,
	// readBytes: those of its entries the walk's cursor has read.
	prevFiles, prevBytes int64
	readFiles, readBytes int64
	// walkedFiles, walkedBytes: the files the walk has met.
	walkedFiles, walkedBytes int64
}

// newEstimate starts the estimate at the previous backup's totals.
func newEstimate(c *progress.Counters, prev *manifest.Summary) *estimate {
	e := &estimate{c: c, prevFiles: prev.Files, prevBytes: prev.Bytes}
	e.publish()
	c.TotalsDone.Store(true)
	return e
}

// read notes an entry of the previous backup read by the walk's cursor.
func (e *estimate) read(pe *manifest.Entry) {
	if e != nil && pe.Type.HasContent() {
		e.readFiles++
		e.readBytes += pe.Size
	}
}

// walked notes an entry the walk met.
func (e *estimate) walked(ent *manifest.Entry) {
	if e == nil || !ent.Type.HasContent() {
		return
	}
	e.walkedFiles++
	e.walkedBytes += ent.Size
	if e.walkedFiles%256 == 0 {
		e.publish()
	}
}

// end makes the totals the walk's own.
func (e *estimate) end() {
	if e == nil {
		return
	}
	e.prevFiles, e.readFiles, e.prevBytes, e.readBytes = 0, 0, 0, 0
	e.publish()
}

func (e *estimate) publish() {
	e.c.TotalFiles.Store(e.walkedFiles + max(e.prevFiles-e.readFiles, 0))
	e.c.TotalBytes.Store(e.walkedBytes + max(e.prevBytes-e.readBytes, 0))
}
