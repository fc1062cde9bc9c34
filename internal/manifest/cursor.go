package manifest

import "io"

// Cursor reads a manifest forward in step with a walk of a tree: Find
// asks for paths in walk order and gets each one's entry, if the manifest
// has it, reading every entry once. A backup merges its walk with the
// previous manifest this way, and a restore's --delete its walk of DEST
// with the manifest restored.
type Cursor struct {
	next func() (*Entry, error)
	cur  *Entry
	eof  bool
}

// NewCursor reads entries from next until io.EOF.
func NewCursor(next func() (*Entry, error)) *Cursor { return &Cursor{next: next} }

// Find returns the entry at path, or nil. After an error from next it
// returns the error once, then nil for every path.
func (c *Cursor) Find(path string) (*Entry, error) {
	for !c.eof {
		if c.cur == nil {
			e, err := c.next()
			if err != nil {
				c.eof = true
				if err == io.EOF {
					return nil, nil
				}
				return nil, err
			}
			c.cur = e
		}
		switch cmp := Compare(c.cur.Path, path); {
		case cmp < 0:
			c.cur = nil
		case cmp == 0:
			e := c.cur
			c.cur = nil
			return e, nil
		default:
			return nil, nil
		}
	}
	return nil, nil
}

// Checked returns r's entries one at a time, each passed through a
// Validator: the first invalid one is an error (a reader of a manifest it
// did not write trusts none past it).
func Checked(r *Reader) func() (*Entry, error) {
	var v Validator
	return func() (*Entry, error) {
		e, err := r.Next()
		if err == nil {
			err = v.Add(e)
		}
		return e, err
	}
}
