package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"usagedrop/internal/testutil"
	"usagedrop/ledger"
	"usagedrop/ledger/postgres"
)

// The daemon on a PostgreSQL ledger imports the README's example file;
// restarted, it takes the same bytes dropped again for a Duplicate, and
// `status` reads the shared ledger directly while the daemon runs. The
// password comes from ledger_password_file and is never logged.
func TestPostgresLedgerDaemon(t *testing.T) {
	db := testutil.Postgres(t)
	d := newDaemon(t)
	pw := filepath.Join(d.dir, "ledger-password")
	if err := os.WriteFile(pw, []byte(db.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile(d.cfg)
	cfg = bytes.Replace(cfg, []byte("ledger: "+d.dir+"/ledger.db"),
		[]byte("ledger: "+db.DSNNoPassword+"\nledger_password_file: "+pw), 1)
	if err := os.WriteFile(d.cfg, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(filepath.Join("examples", "march-usage.csv"))
	if err != nil {
		t.Fatal(err)
	}
	drop := func(name string) {
		p := filepath.Join(d.dir, "drop", name)
		if err := os.WriteFile(p+".part", example, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Rename(p+".part", p)
	}
	waitStatus := func(name string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			m, _ := filepath.Glob(filepath.Join(d.dir, "drop", "*", name+".status.txt"))
			if len(m) > 0 {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("%s not finished:\n%s", name, d.logs.String())
	}
	stop := func(cmd interface {
		Signal(os.Signal) error
		Wait() (*os.ProcessState, error)
	}) {
		cmd.Signal(syscall.SIGTERM)
		cmd.Wait()
	}

	first := d.start()
	drop("march-usage.csv")
	waitStatus("march-usage.csv")
	stop(first.Process)

	second := d.start()
	defer stop(second.Process)
	drop("march-usage-again.csv")
	waitStatus("march-usage-again.csv")

	// Daemons share the ledger, each under its own instance name: a
	// second one under the same name exits.
	var logs logBuffer
	third := exec.Command(binary, "run", "-config", d.cfg)
	third.Stderr = &logs
	if err := third.Run(); err == nil || !strings.Contains(logs.String(), "already runs as instance") || !strings.Contains(logs.String(), "crashy") {
		t.Fatalf("a second daemon under the same name on the ledger: %v\n%s", err, logs.String())
	}

	s, err := postgres.Open(context.Background(), db.DSN, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	byName := map[string]*ledger.Entry{}
	s.List(func(e *ledger.Entry) bool { byName[e.Name] = e; return true })
	a, b := byName["march-usage.csv"], byName["march-usage-again.csv"]
	if a == nil || b == nil || a.State != ledger.Done || b.State != ledger.Duplicate || b.DuplicateOf != a.ID {
		t.Fatalf("ledger after the re-drop: first %+v, second %+v", a, b)
	}
	if imports := d.sim.Imports(); len(imports) != 1 {
		t.Fatalf("%d imports in Zuora, want 1", len(imports))
	}

	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"status", "-config", d.cfg}, &out, &errb); code != 0 {
		t.Fatalf("status exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"march-usage.csv", "march-usage-again.csv"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status while the daemon runs does not show %s:\n%s", want, out.String())
		}
	}
	if logs := d.logs.String(); strings.Contains(logs, db.Password) || !strings.Contains(logs, db.Name) {
		t.Errorf("the logs show the password, or not the ledger:\n%s", logs)
	}
}

// `usagedrop ledger copy` takes a bbolt ledger into PostgreSQL and back,
// drops and holds on bytes alike; FROM must exist, and a daemon holding
// it stops the copy.
func TestLedgerCopyCommand(t *testing.T) {
	db := testutil.Postgres(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "vm.db")
	l, err := ledger.Open(src, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sha := strings.Repeat("ab", 32)
	var ids []string
	for i := range 3 {
		e, err := l.Create("partners", fmt.Sprintf("usage-%d.csv", i), "usage.csv", 10, "", false)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	if _, err := l.Claimed(ids[0], "processing/usage-0.csv", "", 10); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Fetched(ids[0], sha); err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte(db.Password+"\n"), 0o600)

	copyCmd := func(from, to string) (string, int) {
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"ledger", "copy", "-password-file", pw, from, to}, &out, &errb)
		return out.String() + errb.String(), code
	}
	// The daemon holds the file: the copy says so.
	if out, code := copyCmd(src, db.DSNNoPassword); code == 0 || !strings.Contains(out, "another usagedrop running") {
		t.Fatalf("copy of a ledger in use: exit %d: %s", code, out)
	}
	l.Close()
	if out, code := copyCmd(filepath.Join(dir, "missing.db"), db.DSNNoPassword); code == 0 || !strings.Contains(out, "no ledger at") {
		t.Fatalf("copy of a missing ledger: exit %d: %s", code, out)
	}
	out, code := copyCmd(src, db.DSNNoPassword)
	if code != 0 || !strings.Contains(out, "copied 3 drops") || strings.Contains(out, db.Password) {
		t.Fatalf("copy into PostgreSQL: exit %d: %s", code, out)
	}
	back := filepath.Join(dir, "back.db")
	if out, code := copyCmd(db.DSNNoPassword, back); code != 0 || !strings.Contains(out, "copied 3 drops") {
		t.Fatalf("copy back: exit %d: %s", code, out)
	}
	for _, path := range []string{src, back} {
		l, err := ledger.Open(path, ledger.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		l.List(func(e *ledger.Entry) bool { names = append(names, e.Name); return true })
		owner, err := l.BySHA256(sha[:12])
		l.Close()
		if fmt.Sprint(names) != "[usage-0.csv usage-1.csv usage-2.csv]" || owner != ids[0] || err != nil {
			t.Fatalf("%s: %v, owner %s, %v", path, names, owner, err)
		}
	}
}
