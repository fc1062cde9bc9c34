package secrets

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLooks(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		return p
	}
	keyPEM := write("validator.key", "junk\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n")
	certPEM := write("tls.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	other := write("data.key", "not a key at all, a LevelDB file called .key")
	for _, c := range []struct {
		path, abs string
		want      bool
	}{
		{"config/priv_validator_key.json", "", true},
		{"config/node_key.json", "", true},
		{"geth/nodekey", "", true},
		{"jwtsecret", "", true},
		{"keystore/UTC--2024-01-01T00-00-00.000Z--abc", "", true},
		{"data/keystore/sub/x", "", true},
		{"keys/validator.key", keyPEM, true},
		{"tls/tls.pem", certPEM, false},
		{"db/data.key", other, false},
		{"config/config.toml", "", false},
		{"chaindata/000123.ldb", "", false},
		{"notkeystore/x", "", false},
	} {
		if got := Looks(c.path, c.abs); got != c.want {
			t.Errorf("Looks(%q) = %v, want %v", c.path, got, c.want)
		}
	}
}
