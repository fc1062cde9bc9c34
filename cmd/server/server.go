// Package server is `ib server`: serve, and token show.
package server

import (
	"cmp"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"ib/internal/activity"
	"ib/internal/alerts"
	"ib/internal/blockstore"
	"ib/internal/cli"
	"ib/internal/config"
	"ib/internal/notify"
	"ib/internal/runas"
	"ib/internal/server"
	"ib/internal/units"
)

// New returns the server command group.
func New(env *cli.Env, version string) *cobra.Command {
	c := cli.Group(&cobra.Command{Use: "server", Short: "Run and manage the ib server"})
	c.AddCommand(newServe(env, version), newToken(env), newInfo(env), newMigrate(env))
	return c
}

type serveOptions struct {
	listen        string
	dataDir       string
	db            string
	tlsCert       string
	tlsKey        string
	debug         bool
	retention     string
	keepLatest    int
	pruneInterval string
	gcGrace       string
	s3            config.S3
	metricsPort   int
	logFormat     string
	distDir       string
	scrubInterval string
	scrubRate     string
	proxies       []string
	private       bool
	alertWebhooks []string
	alertFormat   string
	staleAfter    string
	minFree       string
	jobsKeep      string
}

func newServe(env *cli.Env, version string) *cobra.Command {
	var o serveOptions
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the server: HTTP API, metadata (SQLite or PostgreSQL), block store",
		Long: `Run the server on its embedded defaults: SQLite metadata and a local block
directory in the data dir. The write token is created at the first start and
kept in server.toml; "ib server token show" prints it.

With --db postgres://… (or IB_DATABASE_URL, or database_url in server.toml) the
metadata is in PostgreSQL, and several servers with the same server.toml, the
same database and the same S3 bucket may serve behind a load balancer.`,
		Args: cli.Args(0, 0),
		RunE: func(c *cobra.Command, _ []string) error {
			return runServe(c, env, o, version)
		},
	}
	f := c.Flags()
	f.StringVar(&o.listen, "listen", "", "address to listen on (default 127.0.0.1:8080)")
	f.StringVar(&o.dataDir, "data-dir", "", "data directory: ib.db and blocks/ (default: the OS's per-user data dir)")
	f.StringVar(&o.db, "db", "", "keep the metadata in this PostgreSQL database, postgres://USER@HOST/DB, instead of SQLite in the data dir (env IB_DATABASE_URL; several servers may share it)")
	f.StringVar(&o.tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM)")
	f.StringVar(&o.tlsKey, "tls-key", "", "the key of --tls-cert (PEM)")
	f.BoolVar(&o.debug, "debug", false, "log at debug level")
	f.IntVar(&o.metricsPort, "metrics-port", 0, "serve Prometheus metrics on this port (same interface as --listen), at /metrics")
	f.StringVar(&o.scrubInterval, "scrub-interval", "7d", "re-hash every stored block this often, 0 to never")
	f.StringVar(&o.scrubRate, "scrub-rate", "50MiB", "read at most this much per second while scrubbing")
	f.BoolVar(&o.private, "private", false, "reads need a token too (scope read or more); by default anyone may browse and download")
	f.StringSliceVar(&o.proxies, "trusted-proxies", nil, "addresses or CIDRs of reverse proxies whose X-Forwarded-For names the client (default none)")
	f.StringVar(&o.distDir, "dist-dir", "", "offer the ib binaries in this folder for download (make dist); the running one is always offered")
	f.StringVar(&o.logFormat, "log-format", "auto", "log format: auto (text on a terminal, JSON otherwise), text or json")
	f.StringVar(&o.retention, "retention", "", "delete backups older than this, e.g. 90d; 0 keeps all (default 90d)")
	f.IntVar(&o.keepLatest, "keep-latest", server.DefaultKeepLatest, "but keep the newest N of each tag set")
	f.StringVar(&o.pruneInterval, "prune-interval", "", "run retention and garbage collection this often (default 24h)")
	f.StringVar(&o.gcGrace, "gc-grace", "", "never collect a block uploaded or asked about within this (default 1h)")
	f.StringArrayVar(&o.alertWebhooks, "alert-webhook", nil, "send the server's alerts (stale tag sets, corrupt blocks, failed prune, low disk) to this URL (repeatable)")
	f.StringVar(&o.alertFormat, "alert-format", "", "the alert webhooks' format: json (default), slack, discord or ntfy")
	f.StringVar(&o.staleAfter, "stale-after", "", "alert when a tag set has had no backup for this long, 0 never (default 26h; per tag set: [[stale]] in server.toml)")
	f.StringVar(&o.minFree, "min-free", "", "alert when the data dir's file system has less free space than this percentage (default 5%; 0 never)")
	f.StringVar(&o.jobsKeep, "jobs-keep", "", "keep the activity log's jobs this long (default 90d)")
	f.StringVar(&o.s3.Endpoint, "s3-endpoint", "", "keep blocks of 256 KiB and more in this S3-compatible service, http(s)://HOST[:PORT] (env IB_S3_ENDPOINT)")
	f.StringVar(&o.s3.Bucket, "s3-bucket", "", "the bucket, created if absent (env IB_S3_BUCKET)")
	f.StringVar(&o.s3.AccessKey, "s3-access-key", "", "access key (env IB_S3_ACCESS_KEY, then AWS_ACCESS_KEY_ID)")
	f.StringVar(&o.s3.SecretKey, "s3-secret-key", "", "secret key (env IB_S3_SECRET_KEY, then AWS_SECRET_ACCESS_KEY; prefer the env or server.toml to a flag)")
	f.StringVar(&o.s3.Region, "s3-region", "", "region (env IB_S3_REGION)")
	f.StringVar(&o.s3.Prefix, "s3-prefix", "", "key prefix inside the bucket (env IB_S3_PREFIX)")
	return c
}

// s3Config resolves the S3 settings: flags, then IB_S3_* variables, then
// server.toml, then the standard AWS variables for the keys. Nil when no
// endpoint is set anywhere.
func s3Config(env *cli.Env, flags, file config.S3) (*blockstore.S3Config, error) {
	pick := func(flag, envName, file string) string { return cmp.Or(flag, env.Getenv(envName), file) }
	c := blockstore.S3Config{
		Endpoint:  pick(flags.Endpoint, "IB_S3_ENDPOINT", file.Endpoint),
		Bucket:    pick(flags.Bucket, "IB_S3_BUCKET", file.Bucket),
		AccessKey: cmp.Or(pick(flags.AccessKey, "IB_S3_ACCESS_KEY", file.AccessKey), env.Getenv("AWS_ACCESS_KEY_ID")),
		SecretKey: cmp.Or(pick(flags.SecretKey, "IB_S3_SECRET_KEY", file.SecretKey), env.Getenv("AWS_SECRET_ACCESS_KEY")),
		Region:    pick(flags.Region, "IB_S3_REGION", file.Region),
		Prefix:    pick(flags.Prefix, "IB_S3_PREFIX", file.Prefix),
	}
	if c.Endpoint == "" {
		if c.Bucket != "" {
			return nil, cli.Usagef("--s3-bucket needs --s3-endpoint")
		}
		return nil, nil
	}
	if c.Bucket == "" {
		return nil, cli.Usagef("--s3-endpoint needs --s3-bucket")
	}
	if c.AccessKey == "" || c.SecretKey == "" {
		return nil, cli.Usagef("S3 needs an access key and a secret key (--s3-access-key/--s3-secret-key, IB_S3_*, server.toml or AWS_*)")
	}
	return &c, nil
}

// duration picks the flag, else the file, else the default.
func duration(name, flag, file string, def time.Duration) (time.Duration, error) {
	v := cmp.Or(flag, file)
	if v == "" {
		return def, nil
	}
	d, err := units.ParseDuration(v)
	if err != nil {
		return 0, cli.Usagef("--%s: %v", name, err)
	}
	return d, nil
}

func runServe(c *cobra.Command, env *cli.Env, o serveOptions, version string) error {
	path, cfg, err := serverConfig(env)
	if err != nil {
		return err
	}
	listen := cmp.Or(o.listen, cfg.Listen, "127.0.0.1:8080")
	dataDir := cmp.Or(o.dataDir, cfg.DataDir)
	if dataDir == "" {
		if dataDir, err = config.DefaultDataDir(); err != nil {
			return err
		}
	}
	if ids, ok, err := runas.FromEnv(env.Getenv); err != nil {
		return cli.UsageError{Err: err}
	} else if ok {
		// A container started as root: the data dir goes to PUID:PGID,
		// and so does the process, before anything is opened.
		if err := runas.Drop(ids, dataDir, filepath.Dir(path)); err != nil {
			return err
		}
	}
	tlsCert, tlsKey := cmp.Or(o.tlsCert, cfg.TLSCert), cmp.Or(o.tlsKey, cfg.TLSKey)
	if (tlsCert == "") != (tlsKey == "") {
		return cli.Usagef("--tls-cert and --tls-key go together")
	}
	retention, err := duration("retention", o.retention, cfg.Retention, server.DefaultRetention)
	if err != nil {
		return err
	}
	interval, err := duration("prune-interval", o.pruneInterval, cfg.PruneInterval, server.DefaultPruneInterval)
	if err != nil {
		return err
	}
	grace, err := duration("gc-grace", o.gcGrace, cfg.GCGrace, server.DefaultGCGrace)
	if err != nil {
		return err
	}
	keep := server.DefaultKeepLatest
	if cfg.KeepLatest > 0 {
		keep = cfg.KeepLatest
	}
	if c.Flags().Changed("keep-latest") {
		if o.keepLatest < 0 {
			return cli.Usagef("--keep-latest %d: want 0 or more", o.keepLatest)
		}
		keep = o.keepLatest
	}
	scrubEvery, err := duration("scrub-interval", o.scrubInterval, "", 0)
	if err != nil {
		return err
	}
	scrubRate, err := units.ParseSize(o.scrubRate)
	if err != nil {
		return cli.Usagef("--scrub-rate: %v", err)
	}
	s3, err := s3Config(env, o.s3, cfg.S3)
	if err != nil {
		return err
	}
	if interval > 0 && interval < time.Second {
		return cli.Usagef("--prune-interval %s: at least 1s, or 0 to prune only after deletions", interval)
	}
	metricsPort := cmp.Or(o.metricsPort, cfg.MetricsPort)
	if metricsPort < 0 || metricsPort > 65535 {
		return cli.Usagef("--metrics-port %d: want 1 to 65535", metricsPort)
	}
	level := slog.LevelInfo
	if o.debug {
		level = slog.LevelDebug
	}
	log, err := serverLogger(env, o.logFormat, level)
	if err != nil {
		return err
	}
	proxies := o.proxies
	if len(proxies) == 0 {
		proxies = cfg.TrustedProxies
	}
	for _, p := range proxies {
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			return cli.Usagef("--trusted-proxies %q: want an IP address or a CIDR", p)
		}
	}
	alertCfg, err := alertConfig(o, cfg)
	if err != nil {
		return err
	}
	jobsKeep, err := duration("jobs-keep", o.jobsKeep, cfg.JobsKeep, activity.DefaultKeep)
	if err != nil {
		return err
	}
	tokens, err := config.ServerTokens(path, func(err error) { log.Error("tokens not reloaded; the previous ones stay", "err", err) })
	if err != nil {
		return err
	}
	srv, err := server.Open(c.Context(), server.Options{
		DataDir: dataDir, Database: cmp.Or(o.db, env.Getenv("IB_DATABASE_URL"), cfg.DatabaseURL), Token: cfg.Token, Tokens: tokens, Private: o.private || cfg.Private, TLSCert: tlsCert, TLSKey: tlsKey, Log: log,
		Retention: retention, KeepLatest: keep, PruneInterval: interval, GCGrace: grace, S3: s3,
		DistDir: cmp.Or(o.distDir, cfg.DistDir), ScrubInterval: scrubEvery, ScrubRate: scrubRate,
		TrustedProxies: proxies, Alerts: alertCfg, JobsKeep: jobsKeep,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		srv.Close()
		return fmt.Errorf("listen %s: %w", listen, err)
	}
	scheme := "http"
	if tlsCert != "" {
		scheme = "https"
	}
	if tlsCert == "" && !loopback(ln.Addr()) {
		fmt.Fprintf(env.Stderr, "warning: serving plain HTTP on %s, which is not a loopback address: tokens and backups cross the network in the clear; use --tls-cert/--tls-key or a TLS reverse proxy\n", ln.Addr())
	}
	log.Info("ib server started", "version", version, "url", scheme+"://"+ln.Addr().String(), "data_dir", dataDir,
		"metadata", srv.Metadata(), "block_store", srv.Store.BlockStore(), "config", path)
	if metricsPort > 0 {
		// Metrics on their own port, on the same interface as the API.
		host, _, _ := net.SplitHostPort(listen)
		maddr := net.JoinHostPort(host, strconv.Itoa(metricsPort))
		mln, err := net.Listen("tcp", maddr)
		if err != nil {
			ln.Close()
			srv.Close()
			return fmt.Errorf("metrics: listen %s: %w", maddr, err)
		}
		ms := &http.Server{Handler: srv.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second}
		go ms.Serve(mln)
		defer ms.Close()
		log.Info("metrics served", "url", "http://"+mln.Addr().String()+"/metrics")
	}
	err = srv.Serve(c.Context(), ln)
	log.Info("ib server stopped")
	return err
}

func loopback(a net.Addr) bool {
	t, ok := a.(*net.TCPAddr)
	return ok && t.IP.IsLoopback()
}

// serverLogger logs as text on a terminal and as JSON otherwise, unless
// --log-format says.
func serverLogger(env *cli.Env, format string, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "auto", "":
		if cli.IsTerminal(env.Stderr) {
			return slog.New(slog.NewTextHandler(env.Stderr, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(env.Stderr, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(env.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(env.Stderr, opts)), nil
	}
	return nil, cli.Usagef("--log-format %q: want auto, text or json", format)
}

func newToken(env *cli.Env) *cobra.Command {
	t := cli.Group(&cobra.Command{Use: "token", Short: "Manage the server's tokens"})
	t.AddCommand(&cobra.Command{
		Use:   "show",
		Short: "Print the admin token (creating it if the server config has none)",
		Args:  cli.Args(0, 0),
		RunE: func(c *cobra.Command, _ []string) error {
			_, cfg, err := serverConfig(env)
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, cfg.Token)
			return nil
		},
	}, newTokenCreate(env), newTokenList(env), newTokenRevoke(env))
	return t
}

// alertConfig reads the alert flags over server.toml.
func alertConfig(o serveOptions, cfg config.Server) (alerts.Config, error) {
	var ac alerts.Config
	hooks := o.alertWebhooks
	if len(hooks) == 0 {
		hooks = cfg.AlertWebhooks
	}
	format := cmp.Or(o.alertFormat, cfg.AlertFormat)
	for _, h := range hooks {
		t := notify.Target{Webhook: h, Format: format}
		for _, msg := range t.Check() {
			return ac, cli.Usagef("--alert-webhook: %s", msg)
		}
		ac.Targets = append(ac.Targets, t)
	}
	stale, err := duration("stale-after", o.staleAfter, cfg.StaleAfter, alerts.DefaultStaleAfter)
	if err != nil {
		return ac, err
	}
	ac.StaleAfter = stale
	if stale == 0 {
		ac.StaleAfter = -1 // never
	}
	for i, r := range cfg.Stale {
		if len(r.Tags) == 0 {
			return ac, cli.Usagef("server.toml [[stale]] #%d: tags are missing", i+1)
		}
		d, err := units.ParseDuration(r.After)
		if err != nil {
			return ac, cli.Usagef("server.toml [[stale]] #%d: after: %v", i+1, err)
		}
		ac.Rules = append(ac.Rules, alerts.StaleRule{Tags: r.Tags, After: d})
	}
	if v := cmp.Or(o.minFree, cfg.MinFree); v != "" {
		pct, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
		if err != nil || pct < 0 || pct >= 100 {
			return ac, cli.Usagef("--min-free %q: want a percentage from 0 to 99, such as 5%%", v)
		}
		ac.MinFree = pct / 100
		if pct == 0 {
			ac.MinFree = -1 // never
		}
	}
	return ac, nil
}
