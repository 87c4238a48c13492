package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"usagedrop/internal/testutil"
)

// A file that kills the daemon whenever it is converted (a test hook
// stands in for an input that crashes or exhausts the converter) is set
// aside after three deaths: it lands in failed/ whole, with a status that
// says why, and every other drop imports exactly once, on a bbolt ledger
// and on a leased PostgreSQL one. The test restarts the daemon each time
// it dies, as systemd would.
func TestPoisonFileSetAside(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon several times")
	}
	for _, kind := range crashLedgers {
		t.Run(kind, func(t *testing.T) {
			t.Parallel() // each case has its own folder, simulator and ledger
			d := newDaemon(t)
			d.onLedger(kind)
			poisonSetAside(t, d)
		})
	}
}

// poisonSetAside is TestPoisonFileSetAside on d's ledger.
func poisonSetAside(t *testing.T, d *daemon) {
	const files = 4
	d.drop(files)
	b, err := os.ReadFile(filepath.Join(testutil.Fixtures(t), "partner-template.csv"))
	if err != nil {
		t.Fatal(err)
	}
	poison := []byte(strings.ReplaceAll(string(b), "Line one", "Line one poison"))
	if err := os.WriteFile(filepath.Join(d.dir, "drop", "poison.csv"), poison, 0o644); err != nil {
		t.Fatal(err)
	}

	status := filepath.Join(d.dir, "drop", "failed", "poison.csv.status.txt")
	settled := func() bool {
		// Files, not only reports, which are written first, and none
		// left in processing/ (see waitImported, waitProcessed).
		_, errStatus := os.Stat(status)
		_, errFile := os.Stat(filepath.Join(d.dir, "drop", "failed", "poison.csv"))
		reports, _ := filepath.Glob(filepath.Join(d.dir, "drop", "imported", "usage-*.csv.status.txt"))
		imported, _ := filepath.Glob(filepath.Join(d.dir, "drop", "imported", "usage-*.csv"))
		left, _ := filepath.Glob(filepath.Join(d.dir, "drop", "processing", "*", "*"))
		return errStatus == nil && errFile == nil && len(reports) == files && len(imported) == files && len(left) == 0
	}
	deaths := 0
	for start := 1; d.runPoisoned(t, start, settled); start++ {
		deaths++
		if start == 8 {
			t.Fatalf("poison.csv still not set aside after %d starts:\n%s", start, d.logs.String())
		}
	}

	t.Logf("the daemon died %d times, then set poison.csv aside", deaths)
	if deaths != 3 {
		t.Errorf("the daemon died %d times, want 3 (the default bound)", deaths)
	}
	kept, err := os.ReadFile(filepath.Join(d.dir, "drop", "failed", "poison.csv"))
	if err != nil || string(kept) != string(poison) {
		t.Fatalf("poison.csv not kept byte for byte in failed/: %v", err)
	}
	rep, _ := os.ReadFile(status)
	if !strings.Contains(string(rep), "this file stopped the service 3 times while being converted; it was set aside") {
		t.Fatalf("status of poison.csv:\n%s", rep)
	}
	if n := len(d.sim.Records()); n != files*1000 {
		t.Fatalf("zuora holds %d records, want %d exactly once", n, files*1000)
	}
	left, _ := filepath.Glob(filepath.Join(d.dir, "drop", "processing", "*", "*"))
	if len(left) > 0 {
		t.Fatalf("files left in processing/: %v", left)
	}
}

// runPoisoned runs the daemon with the poison hook until the hook kills it
// (true) or settled holds, when it stops it with SIGTERM (false).
func (d *daemon) runPoisoned(t *testing.T, start int, settled func() bool) bool {
	t.Helper()
	cmd := d.start("USAGEDROP_CRASH_CONVERTING=poison.csv")
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
			if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("start %d: daemon exited (%v) without the hook killing it:\n%s", start, err, d.logs.String())
			}
			return true
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("start %d: neither killed nor finished:\n%s", start, d.logs.String())
		case <-tick.C:
			if settled() {
				cmd.Process.Signal(syscall.SIGTERM)
				if err := <-exited; err != nil {
					t.Errorf("daemon did not stop cleanly on SIGTERM: %v", err)
				}
				return false
			}
		}
	}
}
