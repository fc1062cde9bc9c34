// Package verify checks a backup: that the server holds every block its
// manifest references, and with deep, that each block's bytes still hash to
// its CID (downloading every one).
package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sync/errgroup"

	"ib/internal/apiclient"
	"ib/internal/block"
	"ib/internal/manifest"
)

// API is what verify needs of the server.
type API interface {
	Manifest(ctx context.Context, id int64) (io.ReadCloser, error)
	Missing(ctx context.Context, cids []string) ([]string, error)
	GetBlock(ctx context.Context, cid string) (io.ReadCloser, error)
}

// Problem is a block that is missing or corrupt, with a file that uses it.
type Problem struct {
	CID  string `json:"cid"`
	File string `json:"file"`
	Err  string `json:"error"`
}

// Report is a verification's outcome.
type Report struct {
	ID      int64     `json:"id"`
	Files   int64     `json:"files"`
	Blocks  int64     `json:"blocks"` // distinct
	Deep    bool      `json:"deep"`
	Missing []Problem `json:"missing"`
	Corrupt []Problem `json:"corrupt"`
}

// OK reports a backup without problems.
func (r Report) OK() bool { return len(r.Missing) == 0 && len(r.Corrupt) == 0 }

// Run verifies backup id; jobs downloads run at once when deep.
func Run(ctx context.Context, api API, id int64, deep bool, jobs int) (Report, error) {
	rep := Report{ID: id, Deep: deep, Missing: []Problem{}, Corrupt: []Problem{}}
	f, err := os.CreateTemp("", "ib-verify-*")
	if err != nil {
		return rep, err
	}
	os.Remove(f.Name())
	defer f.Close()
	if err := apiclient.SpoolManifest(ctx, api, id, f); err != nil {
		return rep, fmt.Errorf("backup %d: %w", id, err)
	}
	// One file that uses each block, for the report.
	fileOf := map[string]string{}
	var order []string
	r := manifest.NewReader(f, nil)
	var v manifest.Validator
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return rep, fmt.Errorf("backup %d: %w", id, err)
		}
		if err := v.Add(e); err != nil {
			return rep, fmt.Errorf("backup %d: %w", id, err)
		}
		if e.Type.HasContent() {
			rep.Files++
		}
		for _, b := range e.Blocks {
			if block.IsInline(b.CID) {
				continue // its bytes are in the manifest, checked with it
			}
			if _, ok := fileOf[b.CID]; !ok {
				fileOf[b.CID] = e.Path
				order = append(order, b.CID)
			}
		}
	}
	rep.Blocks = int64(len(order))
	for start := 0; start < len(order); start += 10_000 {
		missing, err := api.Missing(ctx, order[start:min(start+10_000, len(order))])
		if err != nil {
			return rep, err
		}
		for _, c := range missing {
			rep.Missing = append(rep.Missing, Problem{CID: c, File: fileOf[c], Err: "not on the server"})
		}
	}
	if !deep {
		return rep, nil
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(jobs, 1))
	for _, c := range order {
		g.Go(func() error {
			want, err := block.ParseCID(c)
			if err != nil {
				return err
			}
			rc, err := api.GetBlock(gctx, c)
			if err != nil {
				if apiclient.IsNotFound(err) {
					return nil // reported as missing above
				}
				return err
			}
			_, err = block.Verify(rc, want, block.MaxSize, nil)
			rc.Close()
			if err != nil {
				if errors.Is(err, block.ErrMismatch) || errors.Is(err, block.ErrBadWire) || errors.Is(err, block.ErrTooLarge) {
					mu.Lock()
					rep.Corrupt = append(rep.Corrupt, Problem{CID: c, File: fileOf[c], Err: err.Error()})
					mu.Unlock()
					return nil
				}
				return err
			}
			return nil
		})
	}
	return rep, g.Wait()
}
