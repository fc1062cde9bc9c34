//go:build unix

package cmd_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"ib/internal/ibtest"
	"ib/internal/server"
)

// Slow-loris clients, oversized bodies and wrong tokens get a clear answer
// or a closed connection, and change nothing.
func TestHostileClients(t *testing.T) {
	srv := ibtest.StartServer(t, func(o *server.Options) {
		o.HeaderTimeout, o.BodyIdleTimeout = 500*time.Millisecond, 500*time.Millisecond
	})
	closedWithin := func(c net.Conn, d time.Duration) bool {
		c.SetReadDeadline(time.Now().Add(d))
		_, err := bufio.NewReader(c).ReadString('\n')
		return err != nil && !strings.Contains(err.Error(), "timeout")
	}

	t.Run("headers sent slowly", func(t *testing.T) {
		c, err := net.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /api/v1/backups HTTP/1.1\r\nHost: x\r\n") // and never the blank line
		if !closedWithin(c, 3*time.Second) {
			t.Fatal("the server kept a connection whose headers never ended")
		}
	})

	t.Run("a body that stops", func(t *testing.T) {
		c, err := net.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /api/v1/backups HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 100000\r\n\r\n{\"tags\":{", srv.Token)
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Fatalf("a stalled body got %d", resp.StatusCode)
			}
		} else if strings.Contains(err.Error(), "timeout") {
			t.Fatal("the server waited for a stalled body for 3 s (idle limit 0.5 s)")
		}
	})

	t.Run("oversized bodies", func(t *testing.T) {
		big := bytes.Repeat([]byte("x"), 17<<20)
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/blocks/missing", bytes.NewReader(append([]byte(`{"cids":["`), big...)))
		req.Header.Set("Authorization", "Bearer "+srv.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge && resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("a 17 MiB missing-query: %d, want 413", resp.StatusCode)
		}
	})
	if st := srv.Store.Stats(); st.Backups != 0 || st.Blocks != 0 {
		t.Fatalf("hostile clients changed the store: %+v", st)
	}
}
