package convert

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"usagedrop/internal/hostile"
)

// dropExts are the names a fuzzed drop is tried under; the name picks the
// reader before the bytes are looked at.
var dropExts = []string{".csv", ".xlsx", ".zip", ".txt"}

// fuzzAllocBound is the most one drop may allocate in all. The fuzzer's
// inputs are small, so this bounds what a small hostile file can cost.
const fuzzAllocBound = 256 << 20

// FuzzDrop sends random bytes, dropped under each name, through Convert
// and its packaging: it must never panic, never return an error for what
// is only bad content, keep every table's rows accounted for, keep its
// problems within the caps, leave nothing behind when it rejects, and
// write parts that hold exactly the records it counted.
func FuzzDrop(f *testing.F) {
	addSeeds(f, ".csv", ".xlsx", ".zip")
	for _, h := range hostile.Corpus() {
		if len(h.Body) <= 16<<10 {
			f.Add(h.Body)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, ext := range dropExts {
			dropOnce(t, "drop"+ext, data)
		}
	})
}

// dropOnce converts data dropped as name and checks every promise.
func dropOnce(t *testing.T, name string, data []byte) {
	dir := t.TempDir()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res, err := Convert(context.Background(), name, "fuzz0001", bytes.NewReader(data), int64(len(data)), Options{}, Template{}, Limits{}, dir)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("%s: error for content in memory: %v", name, err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > fuzzAllocBound {
		t.Fatalf("%s: allocated %d MB for %d bytes", name, alloc>>20, len(data))
	}
	checkRows(t, res.Summary)
	caps := DefaultCaps()
	if len(res.Problems) > caps.MaxProblems {
		t.Fatalf("%s: %d problems kept", name, len(res.Problems))
	}
	for _, p := range res.Problems {
		if p.Reason == "" || len(p.Reason) > caps.MaxMessageBytes || len(p.Value) > caps.MaxValueBytes || len(p.Member) > caps.MaxValueBytes || len(p.Sheet) > caps.MaxValueBytes {
			t.Fatalf("%s: problem outside the caps: %+v", name, p)
		}
	}
	left, _ := os.ReadDir(dir)
	if res.Rejected() {
		if len(left) != 0 || len(res.Parts) != 0 {
			t.Fatalf("%s: rejected but left %d files and %d parts", name, len(left), len(res.Parts))
		}
		return
	}
	records := 0
	for _, p := range res.Parts {
		records += countPartRecords(t, p)
	}
	if records != res.Records {
		t.Fatalf("%s: parts hold %d records, summary %d", name, records, res.Records)
	}
}

// countPartRecords reads a part back as Zuora would and counts its rows.
func countPartRecords(t *testing.T, p Part) int {
	t.Helper()
	var r io.Reader
	f, err := os.Open(p.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r = f
	if filepath.Ext(p.Path) == ".zip" {
		zr, err := zip.NewReader(f, p.Size)
		if err != nil || len(zr.File) != 1 {
			t.Fatalf("part %s: %v, %d entries", p.Name, err, len(zr.File))
		}
		rc, err := zr.File[0].Open()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		r = rc
	}
	rows, err := csv.NewReader(r).ReadAll()
	if err != nil || len(rows) == 0 {
		t.Fatalf("part %s: %v", p.Name, err)
	}
	if len(rows)-1 != p.Records {
		t.Fatalf("part %s holds %d rows, says %d", p.Name, len(rows)-1, p.Records)
	}
	return len(rows) - 1
}
