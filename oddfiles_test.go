package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"usagedrop/internal/testutil"
	"usagedrop/sources"
	"usagedrop/zuorasim"
)

// oddDrop is one file a test drops: its name and bytes.
type oddDrop struct{ why, name, body string }

// oddBody is a small valid usage file whose bytes differ per tag, so no
// drop is a duplicate of another.
func oddBody(tag string) string {
	return "ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,DESCRIPTION\n" +
		"A00000052,API Calls,0.25,03/16/2026,,A-S00000011,,odd " + tag + "\n" +
		"A00000051,Minutes,3.125,03/16/2026,03/17/2026,A-S00000004,,odd " + tag + " two\n"
}

// TestOddFilesDaemon drops what careless and hostile users drop — odd
// names, a file named like another's report, a FIFO, a link to a file
// outside — into a running daemon, beside three sources whose
// processing/, imported/ or failed/ was pre-made as a link to a folder
// outside. Every regular file gets its outcome with its bytes and a
// report, the trapped sources stop and say why on /healthz, nothing
// outside the drop folders changes, and the daemon stays up.
func TestOddFilesDaemon(t *testing.T) {
	t.Run("local", func(t *testing.T) {
		oddFiles(t, t.TempDir(), func(dir string) string { return "type: local\n    path: " + dir + "\n" })
	})
	t.Run("sftp", func(t *testing.T) {
		srv := testutil.NewSFTP(t)
		login := fmt.Sprintf("type: sftp\n    address: %s\n    user: %s\n    password: %s\n    known_hosts: %s\n",
			srv.Addr, srv.User, srv.Password, srv.KnownHosts)
		oddFiles(t, srv.Root, func(dir string) string { return login + "    path: " + dir + "\n" })
	})
}

// oddFiles runs the test on folders under root, which source makes the
// YAML keys of a source over (after its name).
func oddFiles(t *testing.T, root string, source func(dir string) string) {
	sim := zuorasim.New(zuorasim.Options{ProcessingDelay: 20 * time.Millisecond})
	drop := filepath.Join(root, "drop")
	outside := filepath.Join(root, "outside")
	for _, d := range []string{drop, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite(t, filepath.Join(outside, "secret.csv"), oddBody("outside"))

	cfg := writeConfig(t, t.TempDir(), "odd", httptestServer(t, sim), "name: drop\n    "+source(drop))
	extra, _ := os.ReadFile(cfg)
	traps := []string{"processing", "imported", "failed"}
	for _, folder := range traps {
		dir := filepath.Join(root, "trap-"+folder)
		os.MkdirAll(dir, 0o755)
		if err := os.Symlink(outside, filepath.Join(dir, folder)); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, filepath.Join(dir, "authorized_keys"), oddBody("trap "+folder))
		extra = fmt.Appendf(extra, "  - name: trap-%s\n    interval: 200ms\n    settle: 100ms\n    %s", folder, source(dir))
	}
	addr := freeAddr(t)
	extra = bytes.Replace(extra, []byte(`http: "off"`), []byte("http: "+addr), 1)
	if err := os.WriteFile(cfg, extra, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	cmd := spawn(t, cfg, &logs)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
		}
	})

	// A file named like the report of a later drop comes first.
	victim := oddDrop{"named like a report", "victim.csv.status.txt", oddBody("victim report-like")}
	put(t, drop, victim)
	waitOutcome(t, drop, victim, &logs)

	drops := []oddDrop{
		{"its report name taken", "victim.csv", oddBody("victim")},
		{"255 bytes", strings.Repeat("a", 251) + ".csv", oddBody("255")},
		{"240 bytes", strings.Repeat("é", 118) + ".csv", oddBody("240")},
		{"newline", "two\nlines.csv", oddBody("newline")},
		{"escape", "esc\x1b[31mred.csv", oddBody("escape")},
		{"leading dash", "-rf.csv", oddBody("dash")},
		{"spaces", "  spaced  out .csv", oddBody("spaces")},
	}
	for _, d := range drops {
		put(t, drop, d)
	}
	if err := syscall.Mkfifo(filepath.Join(drop, "pipe.csv"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.csv"), filepath.Join(drop, "link.csv")); err != nil {
		t.Fatal(err)
	}
	for _, d := range drops {
		where := waitOutcome(t, drop, d, &logs)
		if d.name != "victim.csv" && filepath.Base(where) != d.name {
			t.Errorf("%s: finished as %q, not under its own name", d.why, where)
		}
	}
	// The first drop's bytes are still its own, under its own name.
	if where := waitOutcome(t, drop, victim, &logs); filepath.Base(where) != victim.name {
		t.Errorf("the report-like drop now sits at %q", where)
	}

	t.Run("not UTF-8", func(t *testing.T) {
		if !ledgerKeepsRawNames {
			t.Skip("needs ledger raw-byte names (H3)")
		}
		d := oddDrop{"not UTF-8", "bad\xff\xfe name.csv", oddBody("not utf-8")}
		put(t, drop, d)
		waitOutcome(t, drop, d, &logs)
	})

	for _, name := range []string{"pipe.csv", "link.csv"} {
		fi, err := os.Lstat(filepath.Join(drop, name))
		if err != nil || fi.Mode().IsRegular() {
			t.Errorf("%s was taken or changed: %v, %v", name, fi, err)
		}
	}
	body, code := httpGet(t, "http://"+addr+"/healthz")
	for _, folder := range traps {
		dir := filepath.Join(root, "trap-"+folder)
		if code != 503 || !strings.Contains(body, "source trap-"+folder+" stopped") || !strings.Contains(body, filepath.Join(dir, folder)) {
			t.Errorf("/healthz does not say trap-%s stopped at %s: %d\n%s", folder, filepath.Join(dir, folder), code, body)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "authorized_keys")); err != nil || string(b) != oddBody("trap "+folder) {
			t.Errorf("trap-%s: the dropped file moved or changed: %q, %v", folder, b, err)
		}
	}
	top, _ := os.ReadDir(root)
	var names []string
	for _, e := range top {
		names = append(names, e.Name())
	}
	if want := "drop outside trap-failed trap-imported trap-processing"; strings.Join(names, " ") != want {
		t.Errorf("beside the drop folders now: %q, want %q", names, want)
	}
	entries, _ := os.ReadDir(outside)
	if len(entries) != 1 || entries[0].Name() != "secret.csv" {
		t.Errorf("the folder the links point to now holds %v", entries)
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "secret.csv")); string(b) != oddBody("outside") {
		t.Errorf("outside secret.csv changed: %q", b)
	}
	select {
	case err := <-exited:
		t.Fatalf("the daemon exited: %v\n%s", err, logs.String())
	default:
	}
	if t.Failed() {
		t.Logf("daemon log:\n%s", logs.String())
	}
}

// ledgerKeepsRawNames says whether the ledger keeps a name's raw bytes;
// until it does, a name that is not UTF-8 is mangled there (helper H3
// changes the ledger; the integrator sets this to true after the merge).
const ledgerKeepsRawNames = true

func mustWrite(t *testing.T, p, body string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// put drops d into dir the way careful uploaders do: written under a
// temporary name, then renamed.
func put(t *testing.T, dir string, d oddDrop) {
	t.Helper()
	tmp := filepath.Join(dir, ".upload.part")
	mustWrite(t, tmp, d.body)
	if err := os.Rename(tmp, filepath.Join(dir, d.name)); err != nil {
		t.Fatalf("%s: %v", d.why, err)
	}
}

// waitOutcome waits until d's bytes sit in imported/ or failed/ with a
// status report beside them, and fails the test after a minute. It
// returns the file's final path.
func waitOutcome(t *testing.T, dir string, d oddDrop, logs *logBuffer) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if where := outcome(dir, d); where != "" {
			return where
		}
		time.Sleep(100 * time.Millisecond)
	}
	left, _ := os.ReadDir(dir)
	var names []string
	for _, e := range left {
		names = append(names, fmt.Sprintf("%q", e.Name()))
	}
	t.Fatalf("%s (%q): no outcome with its bytes and a report within a minute; drop folder holds %s\n%s",
		d.why, d.name, strings.Join(names, " "), logs.String())
	return ""
}

// outcome returns the path of the file holding d's bytes in imported/ or
// failed/, if it has its status report beside it.
func outcome(dir string, d oddDrop) string {
	for _, sub := range []string{"imported", "failed"} {
		entries, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, e := range entries {
			p := filepath.Join(dir, sub, e.Name())
			if b, err := os.ReadFile(p); err != nil || string(b) != d.body {
				continue
			}
			report := filepath.Join(dir, sub, sources.ReportName(e.Name(), ".status.txt"))
			if _, err := os.Stat(report); err == nil {
				return p
			}
		}
	}
	return ""
}
