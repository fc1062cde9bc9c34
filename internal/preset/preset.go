// Package preset holds what operators of each chain's node always want of
// a backup of its data directory: the secrets and per-host files to leave
// out, the labels that can be read cheaply, and the files a restore must
// never overwrite (a validator's signing state: an old one makes it sign
// twice). Each preset is a small table, sourced from the chain's own
// documentation (named beside it).
//
// Paths and patterns are relative to the folder backed up, which is the
// node's home or data directory as the preset's Root says, in gitignore
// syntax.
package preset

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Preset is one chain's table.
type Preset struct {
	Name string `json:"name"`
	// Root is the folder a backup with this preset names (for the docs).
	Root string `json:"root"`
	// Exclude: secrets and per-host files, left out of every backup.
	Exclude []string `json:"exclude"`
	// Secrets: the excludes that are keys. With --encrypt-to they are
	// encrypted rather than left out (each is also in Exclude).
	Secrets []string `json:"secrets"`
	// Protected: files restore never overwrites in an existing DEST
	// without --overwrite-protected.
	Protected []string `json:"protected"`
	// Labels read from files, when the node writes them.
	Labels []Label `json:"labels,omitempty"`
	// Sources are the documents the table follows.
	Sources []string `json:"sources"`
}

// Label is a backup label read from a JSON file of the data directory.
type Label struct {
	Key   string `json:"key"`   // the label's key
	File  string `json:"file"`  // a file relative to the folder backed up
	Field string `json:"field"` // a top-level JSON field of it (string or number)
}

// All are the presets, by name.
var All = []Preset{
	{
		Name: "cosmos",
		Root: "the node's home (e.g. ~/.gaia, ~/.osmosisd): config/ and data/",
		Exclude: []string{
			"/config/node_key.json",           // the node's p2p identity
			"/config/priv_validator_key.json", // the validator's consensus key
			"/data/priv_validator_state.json", // the last height/round/step signed
			"LOCK",                            // LevelDB lock files
		},
		Secrets: []string{"/config/node_key.json", "/config/priv_validator_key.json"},
		Protected: []string{
			"/data/priv_validator_state.json",
			"/config/priv_validator_key.json",
			"/config/node_key.json",
		},
		Labels: []Label{{Key: "height", File: "data/priv_validator_state.json", Field: "height"}},
		Sources: []string{
			"CometBFT docs, Running in production: the double-signing protection of priv_validator_state.json",
			"Cosmos SDK docs, Running a node: the files of config/ and data/",
		},
	},
	{
		Name:      "geth",
		Root:      "the datadir (e.g. ~/.ethereum): geth/, keystore/",
		Exclude:   []string{"/geth/nodekey", "/geth/jwtsecret", "/keystore/", "/geth.ipc", "LOCK", "FLOCK"},
		Secrets:   []string{"/geth/nodekey", "/geth/jwtsecret", "/keystore/"},
		Protected: []string{"/geth/nodekey"},
		Sources:   []string{"geth docs, Backup & Restore and Data directory: nodekey, keystore, jwtsecret, the LOCK/FLOCK files"},
	},
	{
		Name:      "reth",
		Root:      "the datadir (e.g. ~/.local/share/reth/mainnet): db/, static_files/",
		Exclude:   []string{"/discovery-secret", "/jwt.hex", "mdbx.lck", "/reth.ipc"},
		Secrets:   []string{"/discovery-secret", "/jwt.hex"},
		Protected: []string{"/discovery-secret"},
		Sources:   []string{"reth book, Data directory: db/ (MDBX), static_files/, discovery-secret, jwt.hex"},
	},
	{
		Name:      "erigon",
		Root:      "the datadir: chaindata/, snapshots/, nodes/",
		Exclude:   []string{"/nodekey", "/nodes/", "/jwt.hex", "mdbx.lck", "/LOCK"},
		Secrets:   []string{"/nodekey", "/jwt.hex"},
		Protected: []string{"/nodekey"},
		Sources:   []string{"erigon docs, Datadir structure: chaindata (MDBX), snapshots, nodes, jwt.hex, LOCK"},
	},
	{
		Name:      "tezos",
		Root:      "the octez node's data dir (e.g. ~/.tezos-node): context/, store/",
		Exclude:   []string{"/identity.json", "/lock", "/peers.json"},
		Secrets:   []string{"/identity.json"},
		Protected: []string{"/identity.json"},
		Labels:    []Label{{Key: "data_version", File: "version.json", Field: "version"}},
		Sources:   []string{"Octez docs, Snapshots and The node's data directory: identity.json (the node's proof-of-work identity), lock, peers.json, version.json"},
	},
	{
		Name:      "solana",
		Root:      "the validator's --ledger directory",
		Exclude:   []string{"*keypair*.json", "/admin.rpc", "LOCK", "/ledger.lock"},
		Secrets:   []string{"*keypair*.json"},
		Protected: []string{"tower-*.bin"},
		Sources:   []string{"Agave docs, Validator operations: the tower file (tower-1_9-<identity>.bin) records votes; an old one risks lockout violations; keypairs stay off backups"},
	},
	{
		Name: "bitcoin",
		Root: "the datadir (e.g. ~/.bitcoin): blocks/, chainstate/",
		Exclude: []string{"/wallet.dat", "/wallets/", "/.lock", "/.cookie", "/debug.log",
			"/onion_v3_private_key", "/i2p_private_key", "LOCK"},
		Secrets:   []string{"/wallet.dat", "/wallets/", "/onion_v3_private_key", "/i2p_private_key"},
		Protected: []string{"/wallet.dat", "/wallets/"},
		Sources:   []string{"Bitcoin Core doc/files.md: blocks/, chainstate/, wallets/, .lock, .cookie, onion_v3_private_key, debug.log"},
	},
}

// Names lists the presets' names.
func Names() []string {
	var out []string
	for _, p := range All {
		out = append(out, p.Name)
	}
	return out
}

// Get returns the preset called name.
func Get(name string) (Preset, error) {
	i := slices.IndexFunc(All, func(p Preset) bool { return p.Name == name })
	if i < 0 {
		return Preset{}, fmt.Errorf("no preset %q: there are %s", name, strings.Join(Names(), ", "))
	}
	return All[i], nil
}

// ReadLabels reads the preset's labels under root; a file that is absent,
// unreadable or without the field gives no label (the node may not write
// it: a non-validator has no signing state).
func (p Preset) ReadLabels(root string) map[string]string {
	out := map[string]string{}
	for _, l := range p.Labels {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(l.File)))
		if err != nil || len(data) > 1<<20 {
			continue
		}
		var doc map[string]json.RawMessage
		if json.Unmarshal(data, &doc) != nil {
			continue
		}
		raw, ok := doc[l.Field]
		if !ok {
			continue
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			var n json.Number
			if json.Unmarshal(raw, &n) != nil {
				continue
			}
			s = n.String()
		}
		if s != "" && len(s) <= 256 {
			out[l.Key] = s
		}
	}
	return out
}
