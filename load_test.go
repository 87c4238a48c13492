//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"usagedrop/zuorasim"
)

// loadRSSBound is the most resident memory the daemon may reach while 2,000
// drops wait across three sources. It is a bound on the daemon's working
// set, not on the backlog: a backlog lives in the ledger and the folders.
const loadRSSBound = 96 << 20

// Two thousand files dropped at once across a local folder, an S3 prefix
// and an SFTP folder: every file gets its outcome (a tenth of them are
// bad and are rejected), every good record is in Zuora exactly once, and
// the daemon's resident memory stays under loadRSSBound throughout. The
// daemon is built without the race detector, whose shadow memory would
// measure the detector rather than the daemon.
func TestLoadTwoThousandDrops(t *testing.T) {
	if testing.Short() {
		t.Skip("drops 2,000 files")
	}
	bin := filepath.Join(t.TempDir(), "usagedrop")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	sim := zuorasim.New(zuorasim.Options{ProcessingDelay: 5 * time.Millisecond})
	url := httptestServer(t, sim)
	folders := []struct {
		name string
		f    sharedFolder
	}{{"local", localFolder(t)}, {"s3", s3Folder(t)}, {"sftp", sftpFolder(t)}}
	var src strings.Builder
	for i, f := range folders {
		if i > 0 {
			src.WriteString("  - interval: 200ms\n    settle: 100ms\n    ")
		}
		src.WriteString("name: " + f.name + "\n" + f.f.yaml)
	}
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "load", url, src.String())
	// The status endpoint on, so that `status` can read the ledger the
	// daemon holds.
	c, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, bytes.Replace(c, []byte(`http: "off"`), []byte("http: "+freeAddr(t)), 1), 0o600)

	const files, rows = 2000, 5
	good := 0
	for i := range files {
		body := templateRows(i, rows)
		if i%10 == 9 {
			body = append(body, "A1,API Calls,not-a-number,03/01/2026,,,,bad\r\n"...)
		} else {
			good++
		}
		folders[i%3].f.put(t, fmt.Sprintf("load-%04d.csv", i), body)
	}

	var logs logBuffer
	cmd := exec.Command(bin, "run", "-config", cfg)
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var peak atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if kb := vmRSS(cmd.Process.Pid); kb*1024 > peak.Load() {
				peak.Store(kb * 1024)
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	start := time.Now()
	deadline := start.Add(12 * time.Minute)
	for len(sim.Records()) < good*rows && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	imported := time.Since(start)
	// Let the rejected files and the last moves finish, then stop.
	var entries []map[string]any
	for time.Now().Before(deadline) {
		entries = statusEntries(t, bin, cfg)
		if finished(entries) == files {
			break
		}
		time.Sleep(time.Second)
	}
	close(stopSampling)
	<-sampled
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("daemon did not stop cleanly: %v", err)
	}
	entries = statusEntries(t, bin, cfg)
	states := map[string]int{}
	for _, e := range entries {
		states[fmt.Sprint(e["state"])]++
	}
	t.Logf("%d files, %d records imported in %v; outcomes %v; peak RSS %.1f MB (bound %d MB)",
		files, len(sim.Records()), imported.Round(time.Second), states, float64(peak.Load())/(1<<20), loadRSSBound>>20)
	if n := finished(entries); n != files {
		t.Fatalf("%d of %d files finished; states %v\n%.3000s", n, files, states, logs.String())
	}
	if states["done"] != good || states["rejected"] != files-good {
		t.Fatalf("outcomes %v, want %d done and %d rejected", states, good, files-good)
	}
	if n := len(sim.Records()); n != good*rows {
		t.Fatalf("zuora holds %d records, want %d exactly once", n, good*rows)
	}
	if peak.Load() == 0 || peak.Load() > loadRSSBound {
		t.Fatalf("peak RSS %d bytes, bound %d", peak.Load(), loadRSSBound)
	}
}

// statusEntries reads the ledger through `usagedrop status -json`: from
// the daemon's endpoint while it runs, from the file once it stopped.
func statusEntries(t *testing.T, bin, cfg string) []map[string]any {
	t.Helper()
	out, err := exec.Command(bin, "status", "-config", cfg, "-json").Output()
	if err != nil {
		return nil
	}
	var entries []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e map[string]any
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			entries = append(entries, e)
		}
	}
	return entries
}

func finished(entries []map[string]any) int {
	n := 0
	for _, e := range entries {
		if e["finished"] == true {
			n++
		}
	}
	return n
}

// vmRSS is the process's resident set in KiB, from /proc.
func vmRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}
