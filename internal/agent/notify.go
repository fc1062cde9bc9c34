package agent

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"ib/internal/manifest"
	"ib/internal/notify"
	"ib/internal/progress"
)

// Notifier sends a run's news to the [[notify]] targets that want its
// event. Sending never fails a backup: a target that does not answer is
// logged and tried again with backoff, in the background.
type Notifier struct {
	Targets []Notify
	Sender  notify.Sender

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
		if slices.Contains(t.Events(), event) {
			n.Sender.Send(ctx, t.Target, notify.Message{Title: "ib: " + m.Set + " " + m.Event, Text: m.Text(), Urgent: event == EventFailure, JSON: m})
		}
	}
}

// Wait waits for the messages in flight (their retries included).
func (n *Notifier) Wait() { n.Sender.Wait() }
