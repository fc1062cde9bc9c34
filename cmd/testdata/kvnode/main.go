// kvnode is a stand-in for a node's database in ib's tests: a Pebble store
// that a writer fills without pause, with a checkpoint command for a
// backup's pre hook and a check of what a restore brought back.
//
//	kvnode run DIR ADDRFILE      write keys k000000000001… into DIR, each
//	                             batch also setting "last"; append a line
//	                             to DIR/node.log every half millisecond (a
//	                             node's log: 32 MiB to start with); serve
//	                             checkpoints on loopback (address in ADDRFILE)
//	kvnode checkpoint ADDRFILE DEST
//	                             take a checkpoint into DEST and print the
//	                             pre hook's directives (ib-label height=N,
//	                             ib-path DEST)
//	kvnode check DIR N           the store at DIR opens and holds exactly
//	                             the keys 1…N (N = "last"; N "-" takes the
//	                             store's own "last")
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/cockroachdb/pebble"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "kvnode:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 3 {
		return errors.New("usage: kvnode run DIR ADDRFILE | checkpoint ADDRFILE DEST | check DIR N")
	}
	switch args[0] {
	case "run":
		return serve(args[1], args[2])
	case "checkpoint":
		return checkpoint(args[1], args[2])
	case "check":
		if args[2] == "-" {
			return check(args[1], 0, true)
		}
		n, err := strconv.ParseUint(args[2], 10, 64)
		if err != nil {
			return err
		}
		return check(args[1], n, false)
	}
	return fmt.Errorf("unknown command %q", args[0])
}

// batchKeys is the keys per batch: 16, or $KVNODE_BATCH (to fill a large
// store quickly for a benchmark).
var batchKeys = func() int {
	if n, err := strconv.Atoi(os.Getenv("KVNODE_BATCH")); err == nil && n > 0 {
		return n
	}
	return 16
}()

func key(i uint64) []byte { return fmt.Appendf(nil, "k%012d", i) }

// value is 1 KiB that depends on the key (so a check can tell a torn
// one), and does not compress (so the store on disk grows as it is fed).
func value(i uint64) []byte {
	v := make([]byte, 0, 1024)
	x := i
	for len(v) < 1024 {
		x += 0x9e3779b97f4a7c15 // splitmix64
		z := (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		v = binary.BigEndian.AppendUint64(v, z^(z>>31))
	}
	return v
}

func serve(dir, addrFile string) error {
	db, err := pebble.Open(dir, &pebble.Options{MemTableSize: 4 << 20, L0CompactionThreshold: 2})
	if err != nil {
		return err
	}
	defer db.Close()
	var mu sync.Mutex
	var last uint64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	http.HandleFunc("/checkpoint", func(w http.ResponseWriter, r *http.Request) {
		dest := r.URL.Query().Get("dir")
		mu.Lock() // between two batches: the checkpoint holds exactly 1…last
		n := last
		err := db.Checkpoint(dest, pebble.WithFlushedWAL())
		mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprint(w, n)
	})
	http.HandleFunc("/last", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprint(w, last)
	})
	go http.Serve(ln, nil)
	if err := startLog(dir); err != nil {
		return err
	}
	if err := os.WriteFile(addrFile+".tmp", []byte(ln.Addr().String()), 0o644); err != nil {
		return err
	}
	if err := os.Rename(addrFile+".tmp", addrFile); err != nil {
		return err
	}
	for {
		mu.Lock()
		b := db.NewBatch()
		for range batchKeys {
			last++
			b.Set(key(last), value(last), nil)
		}
		b.Set([]byte("last"), strconv.AppendUint(nil, last, 10), nil)
		err := b.Commit(pebble.NoSync)
		mu.Unlock()
		if err != nil {
			return err
		}
		time.Sleep(time.Millisecond)
	}
}

func checkpoint(addrFile, dest string) error {
	addr, err := os.ReadFile(addrFile)
	if err != nil {
		return err
	}
	resp, err := http.Get("http://" + string(addr) + "/checkpoint?dir=" + dest)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("checkpoint: %s", body)
	}
	fmt.Printf("taking a checkpoint at height %s\n", body)
	fmt.Printf("ib-label height=%s\nib-path %s\n", body, dest)
	return nil
}

// startLog fills DIR/node.log and appends to it without pause, as a
// node's log that a backup never finds still.
func startLog(dir string) error {
	f, err := os.OpenFile(dir+"/node.log", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	line := bytes.Repeat([]byte("x"), 99)
	line = append(line, '\n')
	if _, err := f.Write(bytes.Repeat(line, 32<<20/len(line))); err != nil {
		return err
	}
	go func() {
		for i := 0; ; i++ {
			f.Write(fmt.Appendf(nil, "%099d\n", i))
			time.Sleep(500 * time.Microsecond)
		}
	}()
	return nil
}

func check(dir string, n uint64, own bool) error {
	db, err := pebble.Open(dir, &pebble.Options{ErrorIfNotExists: true})
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer db.Close()
	v, c, err := db.Get([]byte("last"))
	if err != nil {
		return fmt.Errorf("last: %w", err)
	}
	last, _ := strconv.ParseUint(string(v), 10, 64)
	c.Close()
	if own {
		n = last
	}
	if last != n {
		return fmt.Errorf("last is %d, want %d", last, n)
	}
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte("k"), UpperBound: []byte("l")})
	if err != nil {
		return err
	}
	defer it.Close()
	var i uint64
	for it.First(); it.Valid(); it.Next() {
		i++
		if !bytes.Equal(it.Key(), key(i)) {
			return fmt.Errorf("key %d is %q", i, it.Key())
		}
		if !bytes.Equal(it.Value(), value(i)) {
			return fmt.Errorf("key %d has a torn value", i)
		}
	}
	if i != n {
		return fmt.Errorf("%d keys, want %d", i, n)
	}
	fmt.Printf("ok: %d keys\n", n)
	return nil
}
