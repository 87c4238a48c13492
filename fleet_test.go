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

	"github.com/jackc/pgx/v5"

	"usagedrop/internal/testutil"
	"usagedrop/zuorasim"
)

// fleetLease is the ledger lease of the fleet test's daemons.
const fleetLease = 3 * time.Second

// Three daemons on one PostgreSQL ledger watch the same three folders (a
// local one, S3, SFTP); 300 files are dropped. One daemon is killed with
// SIGKILL mid-way, and another is stopped (SIGSTOP) for longer than the
// lease, then continued. Every record reaches Zuora exactly once; the
// killed daemon's drops are taken over from the ledger's lease, not the
// sources' hour-long claims, and finish within a few lease periods; a
// re-drop of bytes the killed daemon imported is a Duplicate on another.
func TestFleetOnePostgresLedger(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three daemons on 300 files")
	}
	db := testutil.Postgres(t)
	sim := zuorasim.New(zuorasim.Options{ProcessingDelay: 20 * time.Millisecond})
	zuora := httptestServer(t, sim)
	folders := []struct {
		name string
		f    sharedFolder
	}{{"local", localFolder(t)}, {"s3", s3Folder(t)}, {"sftp", sftpFolder(t)}}
	var srcYAML strings.Builder
	for _, f := range folders {
		// The sources' own claim lease stays at its default (1 h): the
		// ledger's decides.
		fmt.Fprintf(&srcYAML, "  - name: %s\n    interval: 200ms\n    settle: 100ms\n%s", f.name, f.f.yaml)
	}
	type daemon struct {
		cmd  *exec.Cmd
		logs *logBuffer
		cfg  string
	}
	start := func(instance string) daemon {
		dir := t.TempDir()
		cfg := fmt.Sprintf(`instance: %s
ledger: %s
ledger_lease: %s
spool: %s/spool
http: "off"
workers: 4
zuora:
  endpoint: %s
  client_id: test
  client_secret: test-secret
  poll: 100ms
  backoff: 10ms
  backoff_max: 300ms
sources:
%s`, instance, db.DSNNoPassword, fleetLease, dir, zuora, srcYAML.String())
		p := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		var logs logBuffer
		return daemon{spawn(t, p, &logs, "PGPASSWORD="+db.Password), &logs, p}
	}
	a, b, c := start("vm-a"), start("vm-b"), start("vm-c")
	stopped := false
	defer func() {
		for _, d := range []daemon{b, c} {
			if stopped {
				d.cmd.Process.Signal(syscall.SIGCONT)
			}
			d.cmd.Process.Signal(syscall.SIGTERM)
			d.cmd.Wait()
		}
	}()
	dump := func() string {
		if dir := os.Getenv("USAGEDROP_FLEET_LOGS"); dir != "" {
			// The whole logs, for a run that failed.
			for name, d := range map[string]daemon{"vm-a": a, "vm-b": b, "vm-c": c} {
				os.WriteFile(filepath.Join(dir, name+".log"), []byte(d.logs.String()), 0o644)
			}
		}
		return fmt.Sprintf("--- vm-a:\n%s\n--- vm-b:\n%s\n--- vm-c:\n%s",
			tail(a.logs.String(), 3000), tail(b.logs.String(), 3000), tail(c.logs.String(), 3000))
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	const files, rows = 300, 3
	for i := range files {
		folders[i%3].f.put(t, fmt.Sprintf("usage-%03d.csv", i), templateRows(i, rows))
	}
	deadline := time.Now().Add(120 * time.Second)
	for time.Now().Before(deadline) {
		// Mid-way, and once vm-a has imported something of its own.
		var doneA int
		conn.QueryRow(ctx, "SELECT count(*) FROM entries WHERE NOT active AND owner = 'vm-a' AND state = 'done'").Scan(&doneA)
		if doneA > 0 && len(sim.Records()) >= files*rows/4 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.cmd.Process.Kill()
	a.cmd.Wait()
	killed := time.Now()
	var orphans []string
	rowsA, _ := conn.Query(ctx, "SELECT id FROM entries WHERE active AND owner = 'vm-a'")
	if orphans, err = pgx.CollectRows(rowsA, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	// The killed daemon's drops: how long until every one is finished,
	// watched from the kill on.
	finished := make(chan time.Duration, 1)
	go func() {
		c, err := pgx.Connect(ctx, db.DSN)
		if err != nil {
			t.Error(err)
			finished <- 0
			return
		}
		defer c.Close(ctx)
		for time.Since(killed) < 120*time.Second {
			var left int
			if err := c.QueryRow(ctx, "SELECT count(*) FROM entries WHERE active AND id = ANY($1)", orphans).Scan(&left); err != nil {
				t.Error(err)
				break
			}
			if left == 0 {
				finished <- time.Since(killed)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		finished <- 0
	}()
	// Stop another for longer than the lease: the third takes its drops
	// over, and once continued it must not work them any more.
	b.cmd.Process.Signal(syscall.SIGSTOP)
	stopped = true
	var heldB int
	conn.QueryRow(ctx, "SELECT count(*) FROM entries WHERE active AND owner = 'vm-b'").Scan(&heldB)
	time.Sleep(2*fleetLease + time.Second)
	b.cmd.Process.Signal(syscall.SIGCONT)
	stopped = false

	took := <-finished
	if took == 0 {
		t.Fatalf("vm-a's %d drops not all finished %v after it was killed\n%s", len(orphans), time.Since(killed), dump())
	}
	t.Logf("vm-a held %d unfinished drops when killed; all finished %v later (lease %v, %.1f leases); vm-b held %d when stopped",
		len(orphans), took.Round(10*time.Millisecond), fleetLease, took.Seconds()/fleetLease.Seconds(), heldB)
	if took > 8*fleetLease {
		t.Errorf("vm-a's drops took %v to finish, more than 8 leases of %v", took, fleetLease)
	}

	waitRecords(sim, files*rows, 180*time.Second)
	missing, doubled := onceEach(sim, files, rows)
	if len(missing)+len(doubled) > 0 {
		t.Fatalf("%d records missing (%q), %d doubled (%q)\n%s", len(missing), missing[:min(5, len(missing))],
			len(doubled), doubled[:min(5, len(doubled))], dump())
	}
	t.Logf("took over: vm-b %d from vm-a; vm-c %d from vm-a, %d from vm-b; vm-b left %d it no longer held, parked %d",
		strings.Count(b.logs.String(), "from=vm-a"), strings.Count(c.logs.String(), "from=vm-a"),
		strings.Count(c.logs.String(), "from=vm-b"), strings.Count(b.logs.String(), "another instance holds a drop"),
		strings.Count(b.logs.String(), "lease is not fresh"))
	if n := strings.Count(b.logs.String()+c.logs.String(), "from=vm-a"); n == 0 {
		t.Errorf("no survivor says it took over a drop from vm-a\n%s", dump())
	}
	if heldB > 0 && !strings.Contains(c.logs.String(), "from=vm-b") {
		t.Errorf("vm-c took over none of stopped vm-b's %d drops\n%s", heldB, dump())
	}

	// A re-drop of bytes vm-a imported, now that only vm-b and vm-c run.
	var name string
	if err := conn.QueryRow(ctx, `SELECT entry->>'name' FROM entries
		WHERE NOT active AND owner = 'vm-a' AND state = 'done' ORDER BY id LIMIT 1`).Scan(&name); err != nil {
		t.Fatalf("no drop vm-a imported: %v", err)
	}
	var i int
	fmt.Sscanf(name, "usage-%03d.csv", &i)
	again := "again-" + name
	folders[i%3].f.put(t, again, templateRows(i, rows))
	var state, owner string
	for deadline := time.Now().Add(60 * time.Second); ; {
		err := conn.QueryRow(ctx, `SELECT state, coalesce(owner, '') FROM entries
			WHERE entry->>'name' = $1 AND NOT active`, again).Scan(&state, &owner)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the re-drop %s never finished: %v\n%s", again, err, dump())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if state != "duplicate" || owner == "vm-a" || owner == "" {
		t.Fatalf("re-drop of vm-a's %s on %s: %s, want duplicate", name, owner, state)
	}
	waitRecords(sim, files*rows, time.Second)
	if n := len(sim.Records()); n != files*rows {
		t.Fatalf("zuora holds %d records after the re-drop, want %d", n, files*rows)
	}
	var active int
	conn.QueryRow(ctx, "SELECT count(*) FROM entries WHERE active").Scan(&active)
	if active != 0 {
		var left []string
		rows, _ := conn.Query(ctx, `SELECT id || ' ' || coalesce(owner, '-') || ' ' || state || ' ' || (lease_until > now())::text || ' ' ||
			coalesce(entry->>'step', '') || ' ' || coalesce(entry->>'last_error', '') FROM entries WHERE active ORDER BY id LIMIT 10`)
		left, _ = pgx.CollectRows(rows, pgx.RowTo[string])
		t.Errorf("%d drops still active: %q\n%s", active, left, dump())
	}

	// status on any instance's config lists the whole fleet's drops, each
	// with the instance that holds (or finished) it.
	t.Setenv("PGPASSWORD", db.Password)
	var out, errb bytes.Buffer
	if code := run(ctx, []string{"status", "-config", c.cfg}, &out, &errb); code != 0 {
		t.Fatalf("status: exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"@vm-a ", "@vm-c "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%.3000s", want, out.String())
		}
	}
	out.Reset()
	if code := run(ctx, []string{"status", "-config", b.cfg, again}, &out, &errb); code != 0 || !strings.Contains(out.String(), "instance") {
		t.Errorf("status %s: exit %d, no instance:\n%s%s", again, code, out.String(), errb.String())
	}
}
