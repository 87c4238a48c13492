package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"usagedrop/internal/testutil"
	"usagedrop/notify"
)

// A rejected file dropped into a running daemon gives one webhook, with
// the file's name and its first problem.
func TestNotifyRejectedWebhook(t *testing.T) {
	var mu sync.Mutex
	var got []notify.Message
	hook := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m notify.Message
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	}))
	received := func() []notify.Message {
		mu.Lock()
		defer mu.Unlock()
		return append([]notify.Message(nil), got...)
	}

	d := newDaemon(t)
	d.cfg = writeConfig(t, d.dir, "notifier", "builtin", fmt.Sprintf(
		"name: drop\n    type: local\n    path: %s/drop\n    notify:\n      - webhook: %s/hooks/tok3n\n", d.dir, hook))
	b, err := os.ReadFile(testutil.CopyFixture(t, "bad-rows.csv"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(d.dir, "drop", "bad-rows.csv"), b, 0o644)
	cmd := d.start()
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()

	for end := time.Now().Add(30 * time.Second); len(received()) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("no webhook; daemon log:\n%s", d.logs.String())
		}
	}
	// A second notice would come within a few reads of the outbox.
	time.Sleep(5 * time.Second)
	msgs := received()
	if len(msgs) != 1 {
		t.Fatalf("%d webhooks, want 1: %+v", len(msgs), msgs)
	}
	m := msgs[0]
	t.Logf("webhook text: %s", m.Text)
	if m.Event != "rejected" || m.Name != "bad-rows.csv" || m.Source != "drop" || m.Problems != 4 {
		t.Fatalf("webhook: %+v", m)
	}
	for _, want := range []string{"bad-rows.csv", "line 8: UOM"} {
		if !strings.Contains(m.Text, want) || !strings.Contains(m.Reason+m.Name, want) {
			t.Errorf("webhook lacks %q: text %q, reason %q", want, m.Text, m.Reason)
		}
	}
	if logs := d.logs.String(); !strings.Contains(logs, "notice sent") || strings.Contains(logs, "tok3n") {
		t.Fatalf("daemon log:\n%s", logs)
	}
}
