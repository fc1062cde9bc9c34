// Package ctxio stops long copies when their context ends.
package ctxio

import (
	"context"
	"io"
)

// Reader returns r whose reads fail with ctx's error once ctx is done, so
// that an io.Copy from it stops between two reads.
func Reader(ctx context.Context, r io.Reader) io.Reader { return reader{ctx, r} }

type reader struct {
	ctx context.Context
	r   io.Reader
}

func (c reader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
