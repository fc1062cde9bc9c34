//go:build unix

package cmd_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"ib/internal/apiclient"
	"ib/internal/backup"
	"ib/internal/block"
	"ib/internal/blockstore"
	"ib/internal/ibtest"
	"ib/internal/manifest"
	"ib/internal/pgtest"
	"ib/internal/s3test"
)

// cluster is several ib servers on one PostgreSQL and one S3 bucket
// behind a real HAProxy.
type cluster struct {
	pg      *pgtest.Server
	dsn     string
	s3      *s3test.Server
	s3cfg   blockstore.S3Config
	servers []*proc
	URL     string // the load balancer
	Token   string
}

// startCluster starts n servers (sharing one token) and the balancer.
func startCluster(t *testing.T, n int, extra ...string) *cluster {
	t.Helper()
	c := &cluster{pg: pgtest.Start(t), s3: s3test.Start(t)}
	c.dsn = c.pg.NewDatabase(t)
	c.s3cfg = blockstore.S3Config{Endpoint: c.s3.Endpoint, Bucket: "ib-scale", AccessKey: c.s3.AccessKey, SecretKey: c.s3.SecretKey, Region: "us-east-1", Prefix: "blocks"}
	args := append([]string{"--db", c.dsn, "--s3-endpoint", c.s3.Endpoint, "--s3-bucket", c.s3cfg.Bucket, "--s3-prefix", c.s3cfg.Prefix,
		"--s3-access-key", c.s3.AccessKey, "--s3-secret-key", c.s3.SecretKey, "--s3-region", c.s3cfg.Region}, extra...)
	first := startProc(t, "http", args...)
	c.servers, c.Token = []*proc{first}, first.Token
	toml, err := os.ReadFile(filepath.Join(first.conf, "server.toml"))
	if err != nil {
		t.Fatal(err)
	}
	for range n - 1 {
		c.servers = append(c.servers, startPeer(t, toml, args...))
	}
	c.URL = startHAProxy(t, c.servers)
	return c
}

// startPeer starts a server with the same server.toml (token) as another.
func startPeer(t *testing.T, toml []byte, args ...string) *proc {
	t.Helper()
	conf := t.TempDir()
	if err := os.WriteFile(filepath.Join(conf, "server.toml"), toml, 0o600); err != nil {
		t.Fatal(err)
	}
	return startProcIn(t, "http", conf, args...)
}

// startHAProxy runs deploy/scale-out/haproxy.cfg (the README's example)
// with its bind address and servers replaced by these, and returns its URL.
func startHAProxy(t *testing.T, servers []*proc) string {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatal("haproxy is not installed (apt-get install haproxy; scripts/test does)")
	}
	example, err := os.ReadFile(filepath.Join("..", "deploy", "scale-out", "haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	var cfg strings.Builder
	var replaced int
	for line := range strings.Lines(string(example)) {
		switch f := strings.Fields(line); {
		case len(f) > 1 && f[0] == "bind":
			fmt.Fprintf(&cfg, "\tbind 127.0.0.1:%d\n", port)
			replaced++
		case len(f) > 2 && f[0] == "server":
			if replaced == 1 {
				for i, s := range servers {
					fmt.Fprintf(&cfg, "\tserver s%d 127.0.0.1:%d %s\n", i, s.port, strings.Join(f[3:], " "))
				}
			}
			replaced++
		default:
			cfg.WriteString(line)
		}
	}
	if replaced != 3 {
		t.Fatalf("deploy/scale-out/haproxy.cfg: want one bind and two server lines, found %d", replaced)
	}
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := &ibtest.SyncBuffer{}
	cmd := exec.Command(bin, "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if resp, err := http.Get(url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy did not answer:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestScaleOut: two servers on one PostgreSQL and one S3 bucket behind
// HAProxy. Two clients back up at once while a third backs up, deletes
// and prunes with zero grace; one server is killed with SIGKILL in the
// middle of the uploads and the clients ride it out through the other,
// which takes over the leadership. Afterwards every surviving backup
// restores byte-exact, and garbage collection has removed exactly the
// unreferenced blocks: no row without a reference, no reference without
// a row, and the bucket's objects are exactly the offloaded rows.
func TestScaleOut(t *testing.T) {
	c := startCluster(t, 2, "--gc-grace", "0")
	ctx := context.Background()
	api, err := apiclient.New(c.URL, c.Token)
	if err != nil {
		t.Fatal(err)
	}
	trees := []string{textTree(t, 48, 1<<20), textTree(t, 40, 1<<20+12345)}
	for i, tr := range trees { // random blocks too: they do not compress, some are offloaded
		ibtest.WriteFile(t, filepath.Join(tr, "random.bin"), ibtest.RandomBytes(3<<20+i), 0o644, time.Unix(1700000000, 0))
	}
	run := func(tags manifest.Tags, root string) error {
		_, err := backup.Run(ctx, api, root, backup.Options{Tags: tags, BlockSize: 256 << 10, Jobs: 4, IsNotFound: apiclient.IsNotFound})
		return err
	}
	var wg, clients sync.WaitGroup
	errs := make(chan error, 8)
	done, clientsDone := make(chan struct{}), make(chan struct{})
	for i, tr := range trees {
		wg.Add(1)
		clients.Add(1)
		go func() {
			defer wg.Done()
			defer clients.Done()
			if err := run(manifest.Tags{"node": fmt.Sprintf("c%d", i)}, tr); err != nil {
				errs <- fmt.Errorf("client c%d: %w", i, err)
			}
		}()
	}
	churn := textTree(t, 12, 300_000)
	wg.Add(1)
	go func() { // the deleting, pruning client
		defer wg.Done()
		for round := 0; ; round++ {
			ibtest.WriteFile(t, filepath.Join(churn, "round"), []byte(strconv.Itoa(round)+strings.Repeat("x", 400_000)), 0o644, time.Unix(1700000000+int64(round), 0))
			if err := run(manifest.Tags{"node": "churn"}, churn); err != nil {
				errs <- fmt.Errorf("churn backup %d: %w", round, err)
				return
			}
			b, err := api.Latest(ctx, manifest.Tags{"node": "churn"})
			if err == nil {
				err = api.Delete(ctx, b.ID)
			}
			if err == nil {
				_, err = api.Prune(ctx, nil)
			}
			if err != nil {
				errs <- fmt.Errorf("churn round %d: %w", round, err)
				return
			}
			// Three rounds while the clients run: each prune with zero
			// grace may collect blocks a client uploaded and has not
			// committed yet, which costs that client one more upload
			// round (it has four).
			if round >= 2 {
				<-clientsDone
				return
			}
			time.Sleep(time.Second)
		}
	}()
	go func() { clients.Wait(); close(clientsDone) }()
	go func() { wg.Wait(); close(done) }()

	// Kill one server once both have taken blocks and the backups run.
	victim, survivor := c.servers[0], c.servers[1]
	for {
		if st, err := api.Stats(ctx); err == nil && st.Blocks >= 20 {
			break
		}
		select {
		case <-clientsDone:
			t.Fatal("the backups ended before a server was killed")
		case <-time.After(10 * time.Millisecond):
		}
	}
	victim.cmd.Process.Signal(syscall.SIGKILL)
	<-victim.exited
	victim.cmd = nil
	t.Logf("killed server %s mid-upload", victim.URL)
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		t.Fatal("the clients did not finish")
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	if !strings.Contains(victim.log.String(), `"PUT"`) && !strings.Contains(victim.log.String(), "/blocks") {
		t.Fatalf("the killed server took no upload:\n%s", victim.log)
	}
	// The survivor leads once the victim's session is gone.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(survivor.log.String(), "leading") {
		if time.Now().After(deadline) {
			t.Fatalf("the surviving server never took the leadership:\n%s", survivor.log)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A last prune collects what the killed server left (orphan objects,
	// rows of uploads never committed).
	if _, err := api.Prune(ctx, nil); err != nil {
		t.Fatal(err)
	}
	conf := t.TempDir()
	mustIB(t, conf, "login", c.URL)
	for i, tr := range trees {
		dst := filepath.Join(t.TempDir(), "dst")
		mustIB(t, conf, "backup", "restore", "latest", fmt.Sprintf("--node=c%d", i), dst, "-q")
		ibtest.TreesEqual(t, tr, dst, nil)
	}
	if l, err := api.List(ctx, manifest.Tags{"node": "churn"}); err != nil || len(l) != 0 {
		t.Fatalf("churn backups left: %v %v", l, err)
	}
	c.checkCollected(t)
}

// checkCollected: every block row is referenced, every reference has its
// row, and the bucket holds exactly the offloaded rows' objects.
func (c *cluster) checkCollected(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var unref, dangling int
	if err := conn.QueryRow(ctx, `SELECT
 (SELECT count(*) FROM blocks b WHERE NOT EXISTS (SELECT 1 FROM refs r WHERE r.block_id = b.id)),
 (SELECT count(*) FROM refs r WHERE NOT EXISTS (SELECT 1 FROM blocks b WHERE b.id = r.block_id))`).Scan(&unref, &dangling); err != nil {
		t.Fatal(err)
	}
	if unref != 0 || dangling != 0 {
		t.Fatalf("after GC: %d unreferenced block rows, %d references without a row", unref, dangling)
	}
	rows, err := conn.Query(ctx, "SELECT cid FROM blocks WHERE data IS NULL")
	if err != nil {
		t.Fatal(err)
	}
	bins, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, b := range bins {
		cid, err := block.CIDFromBytes(b)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, cid.String())
	}
	bucket, err := blockstore.OpenS3(ctx, c.s3cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := bucketKeys(t, bucket)
	slices.Sort(want)
	slices.Sort(got)
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Fatalf("bucket objects differ from the offloaded rows:\n got %d %v\nwant %d %v", len(got), got, len(want), want)
	}
	t.Logf("%d offloaded blocks, each with its object and no other object", len(want))
}
