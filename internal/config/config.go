// Package config reads and writes ib's two TOML files: the client's
// config.toml (server URL, token, job counts) and the server's server.toml
// (token, data dir, retention, S3). Both live in <user config dir>/ib, or in
// $IB_CONFIG_DIR, and are written with mode 0600. Precedence, highest
// first: flags, environment (IB_SERVER, IB_TOKEN, IB_S3_*), the file.
package config

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"ib/internal/auth"
)

// Client is config.toml: the default server, and per server URL its token
// (a token is only ever sent to its own server) and CA certificate.
type Client struct {
	Server      string `toml:"server,omitempty"`
	Jobs        int    `toml:"jobs,omitempty"`
	RestoreJobs int    `toml:"restore_jobs,omitempty"`
	CACert      string `toml:"ca_cert,omitempty"`
	// Token is the file of ib before per-server tokens: the token of
	// Server. LoadClient moves it under Servers.
	Token   string                  `toml:"token,omitempty"`
	Servers map[string]ClientServer `toml:"servers,omitempty"`
	// Identity is the age identity file restore, cat and diff decrypt
	// encrypted files with when no --identity is given.
	Identity string `toml:"identity,omitempty"`
	// LimitUpload and LimitDownload cap this machine's transfer rates
	// ("50MiB": bytes per second) unless --limit-upload/--limit-download.
	LimitUpload   string `toml:"limit_upload,omitempty"`
	LimitDownload string `toml:"limit_download,omitempty"`
	// Backups are settings of `backup create` by tag set, as [[backup]]
	// tables: the first whose tags are all among a backup's tags applies
	// (flags override it).
	Backups []BackupSettings `toml:"backup,omitempty"`
}

// BackupSettings are the live-capture settings of the backups of a tag
// set.
type BackupSettings struct {
	Tags          map[string]string `toml:"tags"`
	PreHook       string            `toml:"pre_hook,omitempty"`
	PostHook      string            `toml:"post_hook,omitempty"`
	HookTimeout   string            `toml:"hook_timeout,omitempty"`
	Preset        string            `toml:"preset,omitempty"`
	Exclude       []string          `toml:"exclude,omitempty"`
	OneFileSystem bool              `toml:"one_file_system,omitempty"`
	ChangeRetries *int              `toml:"change_retries,omitempty"`
	OnChange      string            `toml:"on_change,omitempty"`
	// EncryptTo, Encrypt and EncryptAll are --encrypt-to, --encrypt and
	// --encrypt-all (flags add patterns; --encrypt-to replaces EncryptTo).
	EncryptTo  []string `toml:"encrypt_to,omitempty"`
	Encrypt    []string `toml:"encrypt,omitempty"`
	EncryptAll bool     `toml:"encrypt_all,omitempty"`
}

// BackupFor returns the first [[backup]] table whose tags are all among
// tags, and false when none is.
func (c *Client) BackupFor(tags map[string]string) (BackupSettings, bool) {
	for _, b := range c.Backups {
		ok := true
		for k, v := range b.Tags {
			if tags[k] != v {
				ok = false
				break
			}
		}
		if ok {
			return b, true
		}
	}
	return BackupSettings{}, false
}

// ClientServer is what the client keeps for one server.
type ClientServer struct {
	Token  string `toml:"token,omitempty"`
	CACert string `toml:"ca_cert,omitempty"`
}

// ServerKey is the form of a server URL that its settings are kept under:
// scheme and host in lower case, no trailing slash.
func ServerKey(raw string) string {
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(raw), "/"))
	if err != nil || u.Host == "" {
		return raw
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) + u.EscapedPath()
}

// For returns the settings kept for the server at raw.
func (c *Client) For(raw string) ClientServer { return c.Servers[ServerKey(raw)] }

// Set keeps settings for the server at raw.
func (c *Client) Set(raw string, s ClientServer) {
	if c.Servers == nil {
		c.Servers = map[string]ClientServer{}
	}
	c.Servers[ServerKey(raw)] = s
}

// LoadClient reads the client file, moving a token of the old single-token
// form under its server; migrated reports that it did (the caller may save
// the file in its new form).
func LoadClient(path string) (c Client, migrated bool, err error) {
	if err := Load(path, &c); err != nil {
		return c, false, err
	}
	if c.Token != "" {
		if c.Server != "" {
			if _, ok := c.Servers[ServerKey(c.Server)]; !ok {
				c.Set(c.Server, ClientServer{Token: c.Token, CACert: c.CACert})
			}
		}
		c.Token, migrated = "", true
	}
	return c, migrated, nil
}

// S3 is the server's S3 block store settings.
type S3 struct {
	Endpoint  string `toml:"endpoint,omitempty"`
	Bucket    string `toml:"bucket,omitempty"`
	AccessKey string `toml:"access_key,omitempty"`
	SecretKey string `toml:"secret_key,omitempty"`
	Region    string `toml:"region,omitempty"`
	Prefix    string `toml:"prefix,omitempty"`
}

// Server is server.toml.
type Server struct {
	Token          string   `toml:"token,omitempty"`
	Listen         string   `toml:"listen,omitempty"`
	DataDir        string   `toml:"data_dir,omitempty"`
	DatabaseURL    string   `toml:"database_url,omitempty"` // postgres://…; empty: SQLite in data_dir
	MetricsPort    int      `toml:"metrics_port,omitempty"`
	Retention      string   `toml:"retention,omitempty"`
	KeepLatest     int      `toml:"keep_latest,omitempty"`
	PruneInterval  string   `toml:"prune_interval,omitempty"`
	GCGrace        string   `toml:"gc_grace,omitempty"`
	DistDir        string   `toml:"dist_dir,omitempty"`
	TLSCert        string   `toml:"tls_cert,omitempty"`
	TLSKey         string   `toml:"tls_key,omitempty"`
	TrustedProxies []string `toml:"trusted_proxies,omitempty"`
	Private        bool     `toml:"private,omitempty"`
	// Tokens are the named, scoped tokens, kept hashed (ib server token
	// create); Token above is the admin token.
	Tokens []auth.Token `toml:"tokens,omitempty"`
	S3     S3           `toml:"s3,omitempty"`
	// Alerts and the activity log.
	AlertWebhooks []string    `toml:"alert_webhooks,omitempty"`
	AlertFormat   string      `toml:"alert_format,omitempty"`
	StaleAfter    string      `toml:"stale_after,omitempty"`
	Stale         []StaleRule `toml:"stale,omitempty"`
	MinFree       string      `toml:"min_free,omitempty"`
	JobsKeep      string      `toml:"jobs_keep,omitempty"`
}

// StaleRule is a [[stale]] table of server.toml: the tag sets that include
// Tags are stale after After ("0": never).
type StaleRule struct {
	Tags  map[string]string `toml:"tags"`
	After string            `toml:"after"`
}

// Dir is the folder of both files: $IB_CONFIG_DIR, else <user config dir>/ib.
func Dir() (string, error) {
	if d := os.Getenv("IB_CONFIG_DIR"); d != "" {
		return d, nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("config dir: %w (set IB_CONFIG_DIR)", err)
	}
	return filepath.Join(d, "ib"), nil
}

// CacheDir is the client's cache of manifests (see backup.ManifestCache):
// $IB_CACHE_DIR, else <user cache dir>/ib, with one folder per server URL.
func CacheDir(serverURL string) (string, error) {
	d, err := cacheRoot()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(serverURL))
	return filepath.Join(d, "manifests", hex.EncodeToString(sum[:8])), nil
}

// LockPath is the lock file of backups of one tag set to one server, under
// the client's cache dir: two backups of one tag set never run at once.
func LockPath(serverURL, tagSet string) (string, error) {
	d, err := cacheRoot()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(ServerKey(serverURL) + "\x00" + tagSet))
	return filepath.Join(d, "locks", hex.EncodeToString(sum[:12])+".lock"), nil
}

func cacheRoot() (string, error) {
	if d := os.Getenv("IB_CACHE_DIR"); d != "" {
		return d, nil
	}
	c, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache dir: %w (set IB_CACHE_DIR)", err)
	}
	return filepath.Join(c, "ib"), nil
}

// ClientPath is the client file: explicit if given, else Dir()/config.toml.
func ClientPath(explicit string) (string, error) { return path(explicit, "config.toml") }

// ServerPath is the server file: explicit if given, else Dir()/server.toml.
func ServerPath(explicit string) (string, error) { return path(explicit, "server.toml") }

func path(explicit, name string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	d, err := Dir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, name), nil
}

// Load reads a TOML file into v; a missing file leaves v as it is.
func Load(path string, v any) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if err := toml.Unmarshal(b, v); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// Save writes v to path atomically with mode 0600, creating its folder.
func Save(path string, v any) error {
	b, err := toml.Marshal(v)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".config-*")
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		f.Close()
		return fmt.Errorf("config %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("config %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// NewToken returns a fresh random token.
func NewToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// EnsureServerToken loads the server file and, if it has no token, creates
// one and saves the file. It returns the file's settings.
func EnsureServerToken(path string) (Server, error) {
	var s Server
	if err := Load(path, &s); err != nil {
		return s, err
	}
	if s.Token != "" {
		return s, nil
	}
	s.Token = NewToken()
	if err := Save(path, s); err != nil {
		return s, err
	}
	return s, nil
}

// DefaultDataDir is the per-user data location of the OS.
func DefaultDataDir() (string, error) {
	switch runtime.GOOS {
	case "windows":
		if d := os.Getenv("LOCALAPPDATA"); d != "" {
			return filepath.Join(d, "ib"), nil
		}
	case "darwin":
		if h, err := os.UserHomeDir(); err == nil {
			return filepath.Join(h, "Library", "Application Support", "ib"), nil
		}
	default:
		if d := os.Getenv("XDG_DATA_HOME"); d != "" {
			return filepath.Join(d, "ib"), nil
		}
		if h, err := os.UserHomeDir(); err == nil {
			return filepath.Join(h, ".local", "share", "ib"), nil
		}
	}
	return "", errors.New("no data dir: pass --data-dir")
}

// ServerTokens keeps the tokens of the server file at path, read again
// whenever the file changes, so that `ib server token create` and `revoke`
// count for a running server within a second.
func ServerTokens(path string, onError func(error)) (*auth.Reloading, error) {
	var last fileStamp
	load := func() (*auth.Set, error) {
		last = stamp(path)
		var s Server
		if err := Load(path, &s); err != nil {
			return nil, err
		}
		if s.Token == "" && len(s.Tokens) == 0 {
			return nil, fmt.Errorf("config %s: no token", path)
		}
		set, err := auth.NewSet(s.Token, s.Tokens)
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
		return set, nil
	}
	return auth.NewReloading(load, func() bool { return stamp(path) != last }, onError)
}

type fileStamp struct {
	mod  int64
	size int64
}

func stamp(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{fi.ModTime().UnixNano(), fi.Size()}
}
