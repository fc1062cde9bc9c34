// Package secrets recognises files that look like private keys in a node's
// data directory, so that a backup that would store them in the clear (for
// anyone who can read the server) says so. It knows names, not contents,
// but for *.key and *.pem files, whose first 4 KiB it reads for a PEM
// private-key header.
package secrets

import (
	"bytes"
	"io"
	"os"
	"path"
	"strings"
)

// names are files that hold keys under these exact names: Tendermint and
// cosmos-sdk validator and node keys, geth/erigon/reth node keys, the
// engine API's JWT secret of execution and consensus clients.
var names = map[string]bool{
	"priv_validator_key.json": true,
	"node_key.json":           true,
	"nodekey":                 true,
	"jwtsecret":               true,
	"jwtsecret.hex":           true,
	"jwt.hex":                 true,
}

// dirs hold keys whatever the files are called (Ethereum keystores).
var dirs = map[string]bool{"keystore": true}

// Looks reports whether the file at manifest path p (abs on this machine)
// looks like a private key.
func Looks(p, abs string) bool {
	base := path.Base(p)
	if names[base] {
		return true
	}
	for dir := path.Dir(p); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if dirs[path.Base(dir)] {
			return true
		}
	}
	if ext := strings.ToLower(path.Ext(base)); ext == ".key" || ext == ".pem" {
		return pemPrivateKey(abs)
	}
	return false
}

// pemPrivateKey reads the start of a file for "-----BEGIN … PRIVATE KEY-----".
func pemPrivateKey(abs string) bool {
	f, err := os.Open(abs)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 4096)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	for {
		i := bytes.Index(head, []byte("-----BEGIN "))
		if i < 0 {
			return false
		}
		head = head[i+len("-----BEGIN "):]
		line, _, _ := bytes.Cut(head, []byte("-----"))
		if bytes.HasSuffix(line, []byte("PRIVATE KEY")) && len(line) < 64 {
			return true
		}
	}
}
