package blockstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"ib/internal/ctxio"
)

// Local stores objects as files under a directory, sharded in 1024 folders.
type Local struct {
	dir string
}

var (
	_ Store      = (*Local)(nil)
	_ FilePutter = (*Local)(nil)
)

// OpenLocal opens (creating if needed) a store in dir.
func OpenLocal(dir string) (*Local, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("local block store %s: %w", dir, err)
	}
	return &Local{dir: dir}, nil
}

func (l *Local) String() string { return "local " + l.dir }

func (l *Local) path(key string) (string, error) {
	if key == "" || strings.ContainsAny(key, `/\.`) {
		return "", fmt.Errorf("local block store: invalid key %q", key)
	}
	return filepath.Join(l.dir, shard(key), key), nil
}

// TempDir is where PutFile's files should be made, on the same file system.
func (l *Local) TempDir() string { return filepath.Join(l.dir, "tmp") }

func (l *Local) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if _, err := l.path(key); err != nil {
		return err
	}
	f, err := os.CreateTemp(l.TempDir(), "put-*")
	if err != nil {
		return fmt.Errorf("local block store: %w", err)
	}
	defer os.Remove(f.Name())
	var n int64
	if wt, ok := r.(io.WriterTo); ok && ctx.Err() == nil {
		// Bytes already in memory (a block up to 1 MiB): one write
		// instead of one per 32 KiB.
		n, err = wt.WriteTo(f)
	} else {
		n, err = io.Copy(f, ctxio.Reader(ctx, r))
	}
	if err == nil && n != size {
		err = fmt.Errorf("got %d bytes, want %d", n, size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("local block store: put %s: %w", key, err)
	}
	return l.install(key, f.Name())
}

// PutFile moves a file into the store; it is synced (through f, not
// opened again) and closed first.
func (l *Local) PutFile(ctx context.Context, key string, f *os.File) error {
	err := ctx.Err()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("local block store: put %s: %w", key, err)
	}
	return l.install(key, f.Name())
}

// install renames the synced file at path to key's place, then syncs the
// folder. The shard folder is made only when the rename finds it missing:
// a mkdir of an existing folder per block cost 0.19 CPU-s in an initial
// backup of the shared dataset (16 uploads at once contending for the
// folder's lock).
func (l *Local) install(key, path string) error {
	dst, err := l.path(key)
	if err != nil {
		return err
	}
	dir := filepath.Dir(dst)
	err = os.Rename(path, dst)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(dir, 0o700); err == nil {
			err = os.Rename(path, dst)
		}
	}
	if err != nil {
		return fmt.Errorf("local block store: put %s: %w", key, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("local block store: put %s: %w", key, err)
	}
	return nil
}

func (l *Local) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	p, err := l.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("local block store: %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("local block store: get %s: %w", key, err)
	}
	return f, nil
}

func (l *Local) Stat(ctx context.Context, key string) (Info, error) {
	p, err := l.path(key)
	if err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("local block store: %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return Info{}, fmt.Errorf("local block store: stat %s: %w", key, err)
	}
	return Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

func (l *Local) Delete(ctx context.Context, key string) error {
	p, err := l.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("local block store: delete %s: %w", key, err)
	}
	return nil
}

func (l *Local) List(ctx context.Context, fn func(Info) error) error {
	shards, err := os.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("local block store: list: %w", err)
	}
	for _, s := range shards {
		if !s.IsDir() || s.Name() == "tmp" {
			continue
		}
		ents, err := os.ReadDir(filepath.Join(l.dir, s.Name()))
		if err != nil {
			return fmt.Errorf("local block store: list: %w", err)
		}
		for _, e := range ents {
			if err := ctx.Err(); err != nil {
				return err
			}
			fi, err := e.Info()
			if err != nil {
				continue // removed meanwhile
			}
			if err := fn(Info{Key: e.Name(), Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (l *Local) Check(ctx context.Context) error {
	f, err := os.CreateTemp(l.TempDir(), "check-*")
	if err != nil {
		return fmt.Errorf("local block store %s: not writable: %w", l.dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	// Some file systems refuse fsync on a directory; the rename is done.
	_ = d.Sync()
	return nil
}
