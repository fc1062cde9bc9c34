package agent

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
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"ib/internal/manifest"
	"ib/internal/progress"
)

// Notifier sends a run's news to the [[notify]] targets that want its
// event. Sending never fails a backup: a target that does not answer is
// logged and tried again with backoff, in the background.
type Notifier struct {
	Targets []Notify
	Log     *slog.Logger
	Client  *http.Client
	// Attempts per message (default 5) and the first wait between them
	// (default 2 s, doubling).
	Attempts int
	Backoff  time.Duration

	wg sync.WaitGroup
	mu sync.Mutex // guards Targets after the first Send
}

// SetTargets replaces the targets (a reloaded config).
func (n *Notifier) SetTargets(t []Notify) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.Targets = t
}

// Message is what a notification says; webhooks in the json format get it
// as it is.
type Message struct {
	Event         string            `json:"event"` // failure, recovered, success, warning
	Set           string            `json:"set"`
	Host          string            `json:"host"`
	Tags          map[string]string `json:"tags"`
	Status        string            `json:"status"`
	BackupID      int64             `json:"backup_id,omitempty"`
	Start         time.Time         `json:"start"`
	DurationS     float64           `json:"duration_seconds"`
	Bytes         int64             `json:"bytes"`
	UploadedBytes int64             `json:"uploaded_bytes"`
	Error         string            `json:"error,omitempty"`
}

// Text is the message in one line, for chats and email subjects.
func (m Message) Text() string {
	tags := manifest.Tags(m.Tags).String()
	switch m.Event {
	case EventFailure:
		return fmt.Sprintf("ib backup of %s (%s) on %s FAILED: %s", m.Set, tags, m.Host, m.Error)
	case EventWarning:
		return fmt.Sprintf("ib backup of %s (%s) on %s: backup %d committed with warnings: %s", m.Set, tags, m.Host, m.BackupID, m.Error)
	case EventRecovered:
		return fmt.Sprintf("ib backup of %s (%s) on %s recovered: backup %d, %s in %.0f s", m.Set, tags, m.Host, m.BackupID, progress.Size(m.Bytes), m.DurationS)
	}
	return fmt.Sprintf("ib backup of %s (%s) on %s: backup %d, %s in %.0f s", m.Set, tags, m.Host, m.BackupID, progress.Size(m.Bytes), m.DurationS)
}

// Send sends the news of a run to the targets that want event.
func (n *Notifier) Send(ctx context.Context, event string, set *Set, run Run, host string) {
	m := Message{Event: event, Set: set.Name, Host: host, Tags: set.Tags, Status: run.Status, BackupID: run.BackupID,
		Start: run.Start.UTC(), DurationS: run.Duration().Seconds(), Bytes: run.Bytes, UploadedBytes: run.UploadedBytes, Error: run.Error}
	n.mu.Lock()
	targets := n.Targets
	n.mu.Unlock()
	for _, t := range targets {
		if !slices.Contains(t.Events(), event) {
			continue
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.deliver(context.WithoutCancel(ctx), t, m)
		}()
	}
}

// Wait waits for the messages in flight (their retries included).
func (n *Notifier) Wait() { n.wg.Wait() }

func (n *Notifier) deliver(ctx context.Context, t Notify, m Message) {
	attempts, wait := n.Attempts, n.Backoff
	if attempts <= 0 {
		attempts = 5
	}
	if wait <= 0 {
		wait = 2 * time.Second
	}
	for i := 1; ; i++ {
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := n.once(actx, t, m)
		cancel()
		if err == nil {
			return
		}
		if i == attempts {
			n.Log.Error("notification not sent; giving up", "target", t.name(), "event", m.Event, "set", m.Set, "attempts", i, "err", err)
			return
		}
		n.Log.Warn("notification not sent; trying again", "target", t.name(), "event", m.Event, "set", m.Set, "in", wait, "err", err)
		time.Sleep(wait)
		wait *= 2
	}
}

func (t Notify) name() string {
	if t.Webhook != "" {
		return redact(t.Webhook)
	}
	return "email " + t.Email
}

// redact keeps a webhook's secret path out of the logs.
func redact(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.IndexByte(u[i+3:], '/'); j >= 0 {
			return u[:i+3+j] + "/…"
		}
	}
	return u
}

func (n *Notifier) once(ctx context.Context, t Notify, m Message) error {
	if t.Webhook != "" {
		return n.webhook(ctx, t, m)
	}
	return sendMail(ctx, t, m)
}

// webhook POSTs m in the target's format.
func (n *Notifier) webhook(ctx context.Context, t Notify, m Message) error {
	var body []byte
	ctype := "application/json"
	headers := map[string]string{}
	switch t.Format {
	case "slack":
		body, _ = json.Marshal(map[string]string{"text": m.Text()})
	case "discord":
		body, _ = json.Marshal(map[string]string{"content": m.Text()})
	case "ntfy":
		body, ctype = []byte(m.Text()), "text/plain; charset=utf-8"
		headers["Title"] = "ib: " + m.Set + " " + m.Event
		headers["Tags"] = map[string]string{EventFailure: "rotating_light", EventWarning: "warning"}[m.Event]
		if m.Event == EventFailure {
			headers["Priority"] = "high"
		}
	default:
		body, _ = json.Marshal(m)
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
	c := n.Client
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
func sendMail(ctx context.Context, t Notify, m Message) error {
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
		from = "ib-agent@" + m.Host
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
	js, _ := json.MarshalIndent(m, "", "  ")
	fmt.Fprintf(w, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n\r\n%s\r\n",
		from, t.Email, oneLine(m.Text(), 200), time.Now().Format(time.RFC1123Z), m.Text(), js)
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func (t Notify) password() (string, error) {
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
