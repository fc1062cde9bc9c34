// Package notify sends a message to a webhook (JSON, Slack, Discord or
// ntfy) or by email (SMTP with STARTTLS), retrying with backoff: the
// agent's notifications and the server's alerts.
package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/smtp"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Target is where a message goes: a webhook or an email address.
type Target struct {
	Webhook string `toml:"webhook"`
	Format  string `toml:"format"` // json (default), slack, discord, ntfy

	Email        string `toml:"email"` // the recipient
	From         string `toml:"from"`
	SMTPHost     string `toml:"smtp_host"`
	SMTPPort     int    `toml:"smtp_port"`
	StartTLS     *bool  `toml:"starttls"`
	Username     string `toml:"username"`
	PasswordEnv  string `toml:"password_env"`
	PasswordFile string `toml:"password_file"`
}

// Formats of a webhook.
var Formats = []string{"json", "slack", "discord", "ntfy"}

// Message is one notification: JSON goes as it is to json webhooks; the
// others get Text (and Title, Priority for ntfy; Subject for email).
type Message struct {
	Title  string // a few words
	Text   string // one line
	Urgent bool   // ntfy priority high
	JSON   any
}

// Check reports what is wrong with a target, by key.
func (t *Target) Check() map[string]string {
	bad := map[string]string{}
	switch {
	case t.Webhook == "" && t.Email == "":
		bad[""] = "set webhook = URL or email = ADDRESS"
	case t.Webhook != "" && t.Email != "":
		bad["email"] = "webhook and email in one table: use one table for each"
	case t.Webhook != "":
		if err := CheckURL(t.Webhook); err != nil {
			bad["webhook"] = "webhook: " + err.Error()
		}
		if t.Format != "" && !slices.Contains(Formats, t.Format) {
			bad["format"] = fmt.Sprintf("format %q: want one of %s", t.Format, strings.Join(Formats, ", "))
		}
	default:
		if !strings.Contains(t.Email, "@") {
			bad["email"] = fmt.Sprintf("email %q is not an address", t.Email)
		}
		if t.SMTPHost == "" {
			bad["smtp_host"] = "smtp_host is missing"
		}
		if t.SMTPPort < 0 || t.SMTPPort > 65535 {
			bad["smtp_port"] = fmt.Sprintf("smtp_port %d: want 1 to 65535", t.SMTPPort)
		}
		if t.PasswordEnv != "" && t.PasswordFile != "" {
			bad["password_file"] = "password_env and password_file: give one"
		}
		if t.Format != "" {
			bad["format"] = "format is for webhooks"
		}
	}
	return bad
}

// CheckURL accepts http:// and https:// URLs.
func CheckURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q: want an http:// or https:// URL", s)
	}
	return nil
}

// Name names the target in logs, without a webhook's secret path.
func (t Target) Name() string {
	if t.Webhook != "" {
		return redact(t.Webhook)
	}
	return "email " + t.Email
}

func redact(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.IndexByte(u[i+3:], '/'); j >= 0 {
			return u[:i+3+j] + "/…"
		}
	}
	return u
}

// Sender delivers messages in the background, each retried with backoff;
// a message that cannot be sent is logged, never returned.
type Sender struct {
	Log    *slog.Logger
	Client *http.Client
	// Attempts per message (default 5) and the first wait between them
	// (default 2 s, doubling).
	Attempts int
	Backoff  time.Duration

	wg sync.WaitGroup
}

// Send delivers m to t in the background.
func (s *Sender) Send(ctx context.Context, t Target, m Message) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.deliver(context.WithoutCancel(ctx), t, m)
	}()
}

// Wait waits for the messages in flight (their retries included).
func (s *Sender) Wait() { s.wg.Wait() }

func (s *Sender) deliver(ctx context.Context, t Target, m Message) {
	attempts, wait := s.Attempts, s.Backoff
	if attempts <= 0 {
		attempts = 5
	}
	if wait <= 0 {
		wait = 2 * time.Second
	}
	for i := 1; ; i++ {
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := Deliver(actx, s.Client, t, m)
		cancel()
		if err == nil {
			return
		}
		if i == attempts {
			s.Log.Error("notification not sent; giving up", "target", t.Name(), "title", m.Title, "attempts", i, "err", err)
			return
		}
		s.Log.Warn("notification not sent; trying again", "target", t.Name(), "title", m.Title, "in", wait, "err", err)
		time.Sleep(wait)
		wait *= 2
	}
}

// Deliver sends m to t once.
func Deliver(ctx context.Context, c *http.Client, t Target, m Message) error {
	if t.Webhook != "" {
		return webhook(ctx, c, t, m)
	}
	return sendMail(ctx, t, m)
}

// webhook POSTs m in the target's format.
func webhook(ctx context.Context, c *http.Client, t Target, m Message) error {
	var body []byte
	ctype := "application/json"
	headers := map[string]string{}
	switch t.Format {
	case "slack":
		body, _ = json.Marshal(map[string]string{"text": m.Text})
	case "discord":
		body, _ = json.Marshal(map[string]string{"content": m.Text})
	case "ntfy":
		body, ctype = []byte(m.Text), "text/plain; charset=utf-8"
		headers["Title"] = m.Title
		if m.Urgent {
			headers["Priority"], headers["Tags"] = "high", "rotating_light"
		}
	default:
		body, _ = json.Marshal(m.JSON)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.Webhook, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("User-Agent", "ib-agent")
	for k, v := range headers {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}

// sendMail sends m to t's address over SMTP, with STARTTLS unless
// starttls = false.
func sendMail(ctx context.Context, t Target, m Message) error {
	port := t.SMTPPort
	if port == 0 {
		port = 587
	}
	addr := net.JoinHostPort(t.SMTPHost, strconv.Itoa(port))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	c, err := smtp.NewClient(conn, t.SMTPHost)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if t.StartTLS == nil || *t.StartTLS {
		if err := c.StartTLS(&tls.Config{ServerName: t.SMTPHost}); err != nil {
			return fmt.Errorf("STARTTLS: %w", err)
		}
	}
	if t.Username != "" {
		pw, err := t.password()
		if err != nil {
			return err
		}
		if err := c.Auth(smtp.PlainAuth("", t.Username, pw, t.SMTPHost)); err != nil {
			return err
		}
	}
	from := t.From
	if from == "" {
		host, _ := os.Hostname()
		from = "ib@" + host
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	if err := c.Rcpt(t.Email); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	js, _ := json.MarshalIndent(m.JSON, "", "  ")
	fmt.Fprintf(w, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n\r\n%s\r\n",
		from, t.Email, oneLine(m.Text, 200), time.Now().Format(time.RFC1123Z), m.Text, js)
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func (t Target) password() (string, error) {
	switch {
	case t.PasswordEnv != "":
		return os.Getenv(t.PasswordEnv), nil
	case t.PasswordFile != "":
		b, err := os.ReadFile(t.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("password_file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return "", nil
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
