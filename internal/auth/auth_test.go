package auth

import (
	"testing"
	"time"
)

func TestSetScopes(t *testing.T) {
	s, err := NewSet("admin-token", []Token{
		{Name: "node", Scope: "append", SHA256: Hash("node-token")},
		{Name: "ui", Scope: "read", SHA256: Hash("ui-token")},
	})
	if err != nil {
		t.Fatal(err)
	}
	for tok, want := range map[string]Scope{"admin-token": Admin, "node-token": Append, "ui-token": Read,
		"": None, "node-token ": None, "Node-token": None, Hash("node-token"): None} {
		if got, _ := s.Scope(tok); got != want {
			t.Errorf("Scope(%q) = %v, want %v", tok, got, want)
		}
	}
	if _, err := NewSet("", []Token{{Name: "x", Scope: "root", SHA256: Hash("x")}}); err == nil {
		t.Error("an unknown scope was accepted")
	}
	if _, err := NewSet("", []Token{{Name: "x", Scope: "read", SHA256: "abc"}}); err == nil {
		t.Error("a malformed hash was accepted")
	}
}

func TestReloading(t *testing.T) {
	tokens := []Token{{Name: "a", Scope: "append", SHA256: Hash("a")}}
	changed := false
	r, err := NewReloading(func() (*Set, error) { return NewSet("", tokens) }, func() bool { return changed }, func(error) {})
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := r.Scope("a"); s != Append {
		t.Fatalf("a: %v", s)
	}
	tokens, changed = nil, true // revoked
	r.checked = time.Now().Add(-2 * time.Second)
	if s, _ := r.Scope("a"); s != None {
		t.Fatalf("a revoked token still has scope %v", s)
	}
}
