//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"usagedrop/internal/hostile"
)

// The bar every corpus file is held to, in a child process of its own.
const (
	corpusTimeout  = 60 * time.Second
	corpusMaxRSS   = 64 << 20 // bytes
	corpusMaxOut   = 64 << 10 // stdout and stderr together
	corpusParallel = 2
)

// measureSource is a measuring parent: it runs its arguments as a child,
// passes the child's output through, and writes the child's peak RSS (in
// kilobytes, as Linux gives ru_maxrss) and exit code to the file named in
// MEASURE_TO. The test does not run the child itself because Go starts
// children with vfork and Linux counts the parent's memory, shared until
// exec, in the child's peak: a child of the test process would show the
// test's RSS (tens of MB, more under -race). This parent is a couple of
// MB, which corpusFloor shows.
const measureSource = `package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

func main() {
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Run()
	if cmd.ProcessState == nil {
		os.Exit(3)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	code := cmd.ProcessState.ExitCode()
	if os.WriteFile(os.Getenv("MEASURE_TO"), fmt.Appendf(nil, "%d %d\n", ru.Maxrss, code), 0o600) != nil {
		os.Exit(3)
	}
	os.Exit(max(code, 0))
}
`

// buildMeasure builds the measuring parent into dir.
func buildMeasure(t *testing.T, dir string) string {
	t.Helper()
	src, bin := filepath.Join(dir, "measure.go"), filepath.Join(dir, "measure")
	if err := os.WriteFile(src, []byte(measureSource), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", bin, src)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the measuring parent: %v\n%s", err, out)
	}
	return bin
}

// measured runs bin with args under the measuring parent; the result file
// holds the peak RSS and exit code.
func measured(ctx context.Context, measure, result, bin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, measure, append([]string{bin}, args...)...)
	cmd.Env = append(os.Environ(), "MEASURE_TO="+result)
	// The measuring parent and its child go together on a timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd
}

// corpusRun is what one `usagedrop check -json` run did.
type corpusRun struct {
	file    hostile.File
	elapsed time.Duration
	rss     int64 // peak resident set, bytes; 0 where not measured
	out     int   // bytes of stdout and stderr
}

// TestHostileCorpus runs `usagedrop check -json` on every generated
// hostile file (internal/hostile) as a child process, two at a time, and
// holds each to the bar: a verdict within 60 s, exit 0 (accepted) or 1
// (rejected) and never a crash, the verdict the file wants, peak RSS under
// 64 MB, under 64 KiB of output, and every table's rows accounted for.
// Under -short it runs the first two files of each family.
func TestHostileCorpus(t *testing.T) {
	bin := plainBinary(t)
	measure := buildMeasure(t, t.TempDir())
	files := hostile.Corpus()
	if testing.Short() {
		files = firstOfFamilies(files, 2)
	}
	dir := t.TempDir()
	var (
		mu   sync.Mutex
		runs []corpusRun
		sem  = make(chan struct{}, corpusParallel)
	)
	t.Run("files", func(t *testing.T) {
		for i, f := range files {
			t.Run(f.Family+"/"+f.Name, func(t *testing.T) {
				t.Parallel()
				sem <- struct{}{}
				defer func() { <-sem }()
				p := filepath.Join(dir, strconv.Itoa(i), f.Name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, f.Body, 0o600); err != nil {
					t.Fatal(err)
				}
				r := checkCorpusFile(t, measure, bin, p, f)
				os.Remove(p)
				mu.Lock()
				runs = append(runs, r)
				mu.Unlock()
			})
		}
	})
	summarizeCorpus(t, runs, corpusFloor(t, measure, bin))
}

// corpusFloor is the peak RSS measured for `usagedrop version`: the least
// any measurement can show, the measuring parent's own size included.
func corpusFloor(t *testing.T, measure, bin string) int64 {
	usage := filepath.Join(t.TempDir(), "floor.rusage")
	if err := measured(context.Background(), measure, usage, bin, "version").Run(); err != nil {
		t.Fatalf("measure the floor: %v", err)
	}
	var kb int64
	b, _ := os.ReadFile(usage)
	fmt.Sscan(string(b), &kb)
	return kb << 10
}

// checkCorpusFile runs check on one file and asserts the bar.
func checkCorpusFile(t *testing.T, measure, bin, path string, f hostile.File) corpusRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), corpusTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	usage := path + ".rusage"
	cmd := measured(ctx, measure, usage, bin, "check", "-json", path)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := corpusRun{file: f, elapsed: time.Since(start), out: stdout.Len() + stderr.Len()}
	if ctx.Err() != nil {
		t.Fatalf("no verdict within %s", corpusTimeout)
	}
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	var rssKB int64
	if b, err := os.ReadFile(usage); err == nil {
		fmt.Sscan(string(b), &rssKB, &code)
		os.Remove(usage)
	}
	if runtime.GOOS == "linux" {
		r.rss = rssKB << 10 // ru_maxrss is in kilobytes on Linux
	}
	msg := stdout.String() + stderr.String()
	switch {
	case strings.Contains(msg, "panic:") || strings.Contains(msg, "goroutine "):
		t.Fatalf("crashed (exit %d): %s", code, clipped(msg))
	case code != 0 && code != 1:
		t.Fatalf("exit %d, want 0 or 1: %s", code, clipped(msg))
	case r.out >= corpusMaxOut:
		t.Errorf("%d bytes of output, bound %d: %s", r.out, corpusMaxOut, clipped(msg))
	case r.rss >= corpusMaxRSS:
		t.Errorf("peak RSS %.1f MB, bound %d MB", float64(r.rss)/(1<<20), corpusMaxRSS>>20)
	}
	var res checkResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("exit %d without a verdict (%v): %s", code, err, clipped(msg))
	}
	if want := map[int]string{0: "accept", 1: "reject"}[code]; res.Verdict != want {
		t.Fatalf("exit %d but verdict %q", code, res.Verdict)
	}
	if f.Want != "" && res.Verdict != f.Want {
		t.Errorf("verdict %s, want %s: %s", res.Verdict, f.Want, res.First)
	}
	if len(res.Unbalanced) > 0 || !res.Rows.Balanced() || res.Rows.Out != res.Records || strings.Contains(res.First, "did not add up") {
		t.Errorf("rows do not add up: %d records, tables %+v, unbalanced %+v: %s", res.Records, res.Rows, res.Unbalanced, res.First)
	}
	return r
}

// summarizeCorpus logs the figures the README quotes: how many files, the
// slowest, the largest peak RSS and output.
func summarizeCorpus(t *testing.T, runs []corpusRun, floor int64) {
	if len(runs) == 0 {
		return
	}
	verdicts := map[string]int{}
	for _, r := range runs {
		verdicts[r.file.Want]++
	}
	byTime := append([]corpusRun(nil), runs...)
	sort.Slice(byTime, func(i, j int) bool { return byTime[i].elapsed > byTime[j].elapsed })
	byRSS := append([]corpusRun(nil), runs...)
	sort.Slice(byRSS, func(i, j int) bool { return byRSS[i].rss > byRSS[j].rss })
	maxOut := 0
	for _, r := range runs {
		maxOut = max(maxOut, r.out)
	}
	t.Logf("corpus: %d files (want accept %d, reject %d, either %d); slowest %s %.2fs; peak RSS %s %.1f MB (floor: `usagedrop version` measures %.1f MB); largest output %d bytes",
		len(runs), verdicts["accept"], verdicts["reject"], verdicts[""],
		byTime[0].file.Name, byTime[0].elapsed.Seconds(), byRSS[0].file.Name, float64(byRSS[0].rss)/(1<<20), float64(floor)/(1<<20), maxOut)
	for _, r := range byRSS[:min(5, len(byRSS))] {
		t.Logf("  %-40s %6.1f MB %6.2fs", r.file.Name, float64(r.rss)/(1<<20), r.elapsed.Seconds())
	}
}

// firstOfFamilies keeps the first n files of each family.
func firstOfFamilies(files []hostile.File, n int) []hostile.File {
	seen := map[string]int{}
	var out []hostile.File
	for _, f := range files {
		if seen[f.Family] < n {
			seen[f.Family]++
			out = append(out, f)
		}
	}
	return out
}

// plainBinary is usagedrop built without the race detector, whose memory
// would hide the bound being measured.
func plainBinary(t *testing.T) string {
	t.Helper()
	if !raceEnabled {
		return binary
	}
	bin := filepath.Join(t.TempDir(), "usagedrop")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build usagedrop: %v\n%s", err, out)
	}
	return bin
}

func clipped(s string) string {
	if len(s) > 2000 {
		return s[:2000] + fmt.Sprintf("… (%d more bytes)", len(s)-2000)
	}
	return s
}
