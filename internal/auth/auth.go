// Package auth is who may do what on an ib server: tokens with a name and a
// scope, kept hashed (SHA-256) in server.toml, and the check of a bearer
// token against them in constant time.
//
// Scopes nest: read < append < admin.
//   - read: the read endpoints, which need a token only on a private server;
//   - append: also upload blocks and commit backups, never delete or prune,
//     so that a compromised node cannot erase its own history;
//   - admin: everything. The server's first token (token in server.toml,
//     printed by `ib server token show`) is an admin token.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"sync"
	"time"
)

// Scope is what a token allows.
type Scope int

// The scopes, each allowing what the ones before it allow.
const (
	None Scope = iota
	Read
	Append
	Admin
)

func (s Scope) String() string {
	switch s {
	case Read:
		return "read"
	case Append:
		return "append"
	case Admin:
		return "admin"
	}
	return "none"
}

// ParseScope accepts read, append and admin.
func ParseScope(s string) (Scope, error) {
	switch s {
	case "read":
		return Read, nil
	case "append":
		return Append, nil
	case "admin":
		return Admin, nil
	}
	return None, fmt.Errorf("scope %q: want read, append or admin", s)
}

// Token is a named token as server.toml keeps it: its hash, never itself.
type Token struct {
	Name    string    `toml:"name"`
	Scope   string    `toml:"scope"`
	SHA256  string    `toml:"sha256"`
	Created time.Time `toml:"created"`
}

// Hash is the form a token is kept in.
func Hash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// Keeper answers what a bearer token allows.
type Keeper interface {
	// Scope returns the token's scope and name, or None for an unknown
	// token.
	Scope(token string) (Scope, string)
}

// entry is a token ready to be checked.
type entry struct {
	sum   [32]byte
	scope Scope
	name  string
}

// Set is a fixed set of tokens.
type Set struct{ entries []entry }

// NewSet makes a set of the admin token (may be empty) and named tokens;
// a named token with an unknown scope or a malformed hash is an error.
func NewSet(admin string, named []Token) (*Set, error) {
	s := &Set{}
	if admin != "" {
		s.entries = append(s.entries, entry{sum: sha256.Sum256([]byte(admin)), scope: Admin, name: "admin"})
	}
	for _, t := range named {
		sc, err := ParseScope(t.Scope)
		if err != nil {
			return nil, fmt.Errorf("token %q: %w", t.Name, err)
		}
		b, err := hex.DecodeString(t.SHA256)
		if err != nil || len(b) != 32 {
			return nil, fmt.Errorf("token %q: sha256 must be 64 hex digits", t.Name)
		}
		e := entry{scope: sc, name: t.Name}
		copy(e.sum[:], b)
		s.entries = append(s.entries, e)
	}
	return s, nil
}

// Scope compares the token's hash with every kept hash in constant time.
func (s *Set) Scope(token string) (Scope, string) {
	if token == "" {
		return None, ""
	}
	sum := sha256.Sum256([]byte(token))
	best, name := None, ""
	for _, e := range s.entries {
		if subtle.ConstantTimeCompare(sum[:], e.sum[:]) == 1 && e.scope > best {
			best, name = e.scope, e.name
		}
	}
	return best, name
}

// Reloading is a Set read again by load whenever changed says so (a
// token created or revoked while the server runs counts at once). Checks
// are at most once a second.
type Reloading struct {
	load    func() (*Set, error)
	changed func() bool

	mu      sync.Mutex
	set     *Set
	checked time.Time
	onError func(error)
}

// NewReloading loads the set once; onError hears of later failed reloads
// (the last good set stays).
func NewReloading(load func() (*Set, error), changed func() bool, onError func(error)) (*Reloading, error) {
	s, err := load()
	if err != nil {
		return nil, err
	}
	return &Reloading{load: load, changed: changed, set: s, checked: time.Now(), onError: onError}, nil
}

// Scope checks the token against the current set.
func (r *Reloading) Scope(token string) (Scope, string) {
	r.mu.Lock()
	if now := time.Now(); now.Sub(r.checked) >= time.Second {
		r.checked = now
		if r.changed() {
			if s, err := r.load(); err != nil {
				r.onError(err)
			} else {
				r.set = s
			}
		}
	}
	s := r.set
	r.mu.Unlock()
	return s.Scope(token)
}
