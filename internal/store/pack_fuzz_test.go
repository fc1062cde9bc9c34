package store_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"ib/internal/block"
)

// FuzzPack: whatever a pack's bytes, PutPack never panics, and every block
// it stores reads back as bytes that match its CID.
func FuzzPack(f *testing.F) {
	data := []byte("hello pack")
	c := block.Sum(data).String()
	wire, _ := block.Encode(data, block.DefaultLevel)
	good := block.AppendFrame(nil, c, wire)
	f.Add(good)
	f.Add(append(append([]byte(nil), good...), good...))
	f.Add(good[:len(good)-3])
	f.Add(block.AppendFrame(nil, block.Sum([]byte("other")).String(), wire))
	f.Add([]byte{0x05, 'a', 'b', 'c', 'd', 'e', 0x01, 0x00})
	fx := newStore(f)
	f.Fuzz(func(t *testing.T, pack []byte) {
		ctx := context.Background()
		n, err := fx.st.PutPack(ctx, bytes.NewReader(pack))
		if err == nil && n == 0 && len(pack) > 0 {
			t.Fatalf("a non-empty pack stored nothing and gave no error")
		}
		// every block a pack names is either refused or whole
		br := bytes.NewReader(pack)
		for {
			cidStr, size, err := block.ReadFrameHeader(br, 1<<30)
			if err != nil || size > int64(br.Len()) {
				return
			}
			br.Seek(size, io.SeekCurrent)
			rc, _, err := fx.st.OpenBlock(ctx, cidStr)
			if err != nil {
				continue // not stored
			}
			want, _ := block.ParseCID(cidStr)
			_, verr := block.Verify(rc, want, block.MaxSize, nil)
			rc.Close()
			if verr != nil {
				t.Fatalf("stored block %s does not match its CID: %v", cidStr, verr)
			}
		}
	})
}
