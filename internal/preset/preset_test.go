package preset

import (
	"slices"
	"testing"
)

// A preset's secrets are among its excludes: without --encrypt-to they
// are left out, never sent in the clear.
func TestSecretsAreExcluded(t *testing.T) {
	for _, p := range All {
		if len(p.Secrets) == 0 {
			t.Errorf("%s: no secrets", p.Name)
		}
		for _, s := range p.Secrets {
			if !slices.Contains(p.Exclude, s) {
				t.Errorf("%s: secret %s is not excluded", p.Name, s)
			}
		}
	}
}
