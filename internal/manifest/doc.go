// Package manifest describes one backup: its tags and one Entry per
// directory, regular file and symlink, in walk order (the folder itself as
// ".", then depth-first with siblings sorted by name bytewise).
//
// It owns the rules every side checks: valid tags, valid paths, the walk
// order, and the Validator that the server runs over a manifest as it
// streams in. The JSON form is the one of the HTTP API; Reader decodes it
// one entry at a time so that no side holds a whole manifest in memory.
package manifest
