package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"filippo.io/age"

	"ib/internal/ctxio"
	"ib/internal/encrypt"
	"ib/internal/ignore"
	"ib/internal/manifest"
	"ib/internal/scan"
)

// Encrypt says which files' content is sealed as an age file, to whom.
// A sealed file is encrypted once into a spool (age gives every file a
// fresh key, so a second read would not give the same bytes), and its
// blocks are cut from the spool and uploaded from it; the manifest keeps
// its own size as plain_size.
type Encrypt struct {
	Recipients []age.Recipient
	Patterns   []*ignore.Pattern // gitignore syntax, as --exclude
	All        bool
}

// Wants reports whether the file at path is to be sealed: --encrypt-all,
// or a pattern matching it or a folder above it (a matched folder seals
// everything in it, as git ignores everything in an ignored folder).
func (e *Encrypt) Wants(path string) bool {
	if e == nil {
		return false
	}
	if e.All {
		return true
	}
	parts := strings.Split(path, "/")
	for i := 1; i < len(parts); i++ {
		if p := ignore.MatchAny(e.Patterns, strings.Join(parts[:i], "/"), true); p != nil && !p.Negative() {
			return true
		}
	}
	p := ignore.MatchAny(e.Patterns, path, false)
	return p != nil && !p.Negative()
}

// sealedSpools are the spools of the sealed files of a run, by manifest
// path: uploads, and the uploads a refused commit asks for, read them.
type sealedSpools struct {
	mu    sync.Mutex
	paths map[string]string
}

func (s *sealedSpools) set(path, spool string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paths == nil {
		s.paths = map[string]string{}
	}
	if old, ok := s.paths[path]; ok {
		os.Remove(old)
	}
	s.paths[path] = spool
}

// has reports whether path was sealed in this run.
func (s *sealedSpools) has(path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.paths[path]
	return ok
}

// source is where the bytes of path's blocks are: its spool when sealed.
func (s *sealedSpools) source(path, abs string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sp, ok := s.paths[path]; ok {
		return sp
	}
	return abs
}

func (s *sealedSpools) removeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sp := range s.paths {
		os.Remove(sp)
	}
	s.paths = nil
}

// sealOnce encrypts a file into a new spool, cuts the spool into blocks
// and keeps it as the source of path's uploads: one read of the file, with
// the same stat before and after as hashFile takes. rd.plain is the file's
// own size.
func (r *run) sealOnce(ctx context.Context, path, abs string, buf []byte) (readOnce, error) {
	f, pre, err := openRegular(abs)
	if err != nil {
		return readOnce{}, err
	}
	defer f.Close()
	spool, err := os.CreateTemp("", "ib-sealed-*.age")
	if err != nil {
		return readOnce{}, fmt.Errorf("seal %s: %w", path, err)
	}
	name := spool.Name()
	fail := func(err error) (readOnce, error) {
		spool.Close()
		os.Remove(name)
		return readOnce{}, err
	}
	w, err := encrypt.Writer(spool, r.opts.Encrypt.Recipients)
	if err != nil {
		return fail(fmt.Errorf("seal %s: %w", path, err))
	}
	plain, err := io.CopyBuffer(w, io.LimitReader(ctxio.Reader(ctx, f), pre.Size()), buf)
	if err == nil {
		err = w.Close()
	}
	if err == nil {
		err = spool.Close()
	}
	if err != nil {
		return fail(fmt.Errorf("seal %s: %w", path, err))
	}
	if afterRead != nil {
		afterRead(abs)
	}
	post, err := f.Stat()
	if err != nil {
		os.Remove(name)
		return readOnce{}, fmt.Errorf("read %s: %w", abs, err)
	}
	rd, err := r.hashFile(ctx, name, buf, nil)
	if err != nil {
		os.Remove(name)
		return readOnce{}, err
	}
	r.sealed.set(path, name)
	rd.info, rd.plain = pre, plain
	rd.stable = plain == pre.Size() && scan.StampOf(pre) == scan.StampOf(post)
	return rd, nil
}

// sealAgain encrypts a file reused from the previous backup again, into a
// new spool its blocks upload from: e takes the new blocks and sizes.
func (r *run) sealAgain(ctx context.Context, e *manifest.Entry) error {
	j := &job{item: &scan.Item{Path: e.Path, Abs: r.abs(e.Path)}, entry: *e}
	err := r.readFile(ctx, j, make([]byte, 1<<20)) // sealed, as the entry was
	if errors.Is(err, errVanished) {
		return fmt.Errorf("encrypt %s again (the server lost its blocks): it is gone; back up again", e.Path)
	}
	if err != nil {
		return fmt.Errorf("encrypt %s again (the server lost its blocks): %w", e.Path, err)
	}
	*e = j.entry
	return nil
}
