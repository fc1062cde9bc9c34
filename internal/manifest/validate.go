package manifest

import (
	"errors"
	"fmt"
	"time"

	"ib/internal/block"
)

// ErrInvalid reports an entry that breaks the manifest's rules.
var ErrInvalid = errors.New("invalid manifest")

// Validator checks a manifest one entry at a time, in constant memory per
// directory depth: paths valid, strictly increasing in walk order (so no
// duplicates), each under a directory entry already seen (so never under a
// file or a symlink), known types, and file sizes that equal the sum of their
// blocks.
type Validator struct {
	// MaxBlockSize bounds each block; block.MaxSize when zero.
	MaxBlockSize int64

	n    int
	prev string
	dirs []string // the open directories from "." down to the last one
}

// Count is the number of entries accepted so far.
func (v *Validator) Count() int { return v.n }

// Add checks the next entry.
func (v *Validator) Add(e *Entry) error {
	if err := v.add(e); err != nil {
		return fmt.Errorf("%w: entry %d (%q): %w", ErrInvalid, v.n, e.Path, err)
	}
	v.n++
	v.prev = e.Path
	if e.Type == TypeDir {
		v.dirs = append(v.dirs, e.Path)
	}
	return nil
}

func (v *Validator) add(e *Entry) error {
	if err := CheckPath(e.Path); err != nil {
		return err
	}
	if v.n == 0 {
		if e.Path != "." || e.Type != TypeDir {
			return errors.New(`the first entry must be the folder itself: path ".", type dir`)
		}
	} else {
		if Compare(v.prev, e.Path) >= 0 {
			return fmt.Errorf("out of walk order or repeated after %q", v.prev)
		}
		parent := Parent(e.Path)
		for len(v.dirs) > 0 && v.dirs[len(v.dirs)-1] != parent {
			v.dirs = v.dirs[:len(v.dirs)-1]
		}
		if len(v.dirs) == 0 {
			return fmt.Errorf("parent %q is not a directory entry before it (a file, a symlink or absent)", parent)
		}
	}
	if e.Mode&^ModeMask != 0 {
		return fmt.Errorf("mode %o has bits beyond 07777", e.Mode)
	}
	if e.MTime.IsZero() && e.MTime.Location() == time.UTC {
		// the zero time is what a missing "mtime" decodes to
		return errors.New("mtime missing")
	}
	maxBlock := v.MaxBlockSize
	if maxBlock <= 0 {
		maxBlock = block.MaxSize
	}
	if e.ChangedDuringRead && !e.Type.HasContent() {
		return errors.New("only a file can change while read")
	}
	switch {
	case e.Encryption == "" && e.PlainSize != 0:
		return errors.New("plain_size without encryption")
	case e.Encryption != "" && e.Encryption != EncryptionAge:
		return fmt.Errorf("encryption %q: the one known is %q", e.Encryption, EncryptionAge)
	case e.Encryption != "" && !e.Type.HasContent():
		return errors.New("only a file's content is encrypted")
	case e.PlainSize < 0:
		return fmt.Errorf("negative plain_size %d", e.PlainSize)
	}
	switch e.Type {
	case TypeFile, TypeHardlink:
		if e.Type == TypeFile && e.Target != "" {
			return errors.New("a file has no target")
		}
		if e.Type == TypeHardlink {
			if err := CheckPath(e.Target); err != nil || e.Target == "." {
				return fmt.Errorf("hard link target %q is not a path of this backup", e.Target)
			}
			if Compare(e.Target, e.Path) >= 0 {
				return fmt.Errorf("hard link target %q does not come before it in walk order", e.Target)
			}
		}
		if e.Size < 0 {
			return fmt.Errorf("negative size %d", e.Size)
		}
		var sum int64
		for i, b := range e.Blocks {
			c, err := block.ParseCID(b.CID)
			if err != nil {
				return fmt.Errorf("block %d: %w", i, err)
			}
			if data, ok := block.InlineData(c); ok && int64(len(data)) != b.Size {
				return fmt.Errorf("block %d: an inline CID of %d bytes given as %d", i, len(data), b.Size)
			}
			if b.Size <= 0 || b.Size > maxBlock {
				return fmt.Errorf("block %d: size %d outside 1..%d", i, b.Size, maxBlock)
			}
			sum += b.Size
		}
		if sum != e.Size {
			return fmt.Errorf("blocks add up to %d bytes, size is %d", sum, e.Size)
		}
	case TypeDir:
		if e.Size != 0 || len(e.Blocks) != 0 || e.Target != "" {
			return errors.New("a directory has no size, blocks or target")
		}
	case TypeSymlink:
		if e.Size != 0 || len(e.Blocks) != 0 {
			return errors.New("a symlink has no size or blocks")
		}
		if e.Target == "" || len(e.Target) > MaxPathLen {
			return errors.New("a symlink needs a target of 1 to 4096 bytes")
		}
	default:
		return fmt.Errorf("unknown type %q", e.Type)
	}
	return nil
}
