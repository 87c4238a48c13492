package pipeline

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"usagedrop/config"
	"usagedrop/ledger"
)

// ReadReport returns the very bytes finishing wrote beside the file, and
// says plainly when there is no such report.
func TestReadReport(t *testing.T) {
	e := start(t)
	e.drop("bad-rows.csv", "bad.csv")
	e.drop("eu-export.csv", "good.csv")
	got := e.waitFinished(2)
	bad, good := got["bad.csv"], got["good.csv"]
	if bad.State != ledger.Rejected || good.State != ledger.Done {
		t.Fatalf("bad %s, good %s (%s)", bad.State, good.State, good.LastError)
	}

	// A pipeline that is not running reads them as well: only its
	// sources are needed.
	sc := config.DefaultConfig().Sources[0]
	sc.Path = e.dropDir
	src, err := BuildSource(sc, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	p := New(Options{Sources: []Source{src}})
	ctx := context.Background()

	for _, tt := range []struct {
		e    *ledger.Entry
		kind string
		file string
	}{
		{bad, ReportStatus, "failed/bad.csv.status.txt"},
		{bad, ReportErrors, "failed/bad.csv.errors.csv"},
		{good, ReportStatus, "imported/good.csv.status.txt"},
	} {
		b, err := p.ReadReport(ctx, tt.e, tt.kind)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.e.Name, tt.kind, err)
		}
		want, err := os.ReadFile(filepath.Join(e.dropDir, tt.file))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, want) || len(b) == 0 {
			t.Errorf("%s %s: read %d bytes, %s has %d", tt.e.Name, tt.kind, len(b), tt.file, len(want))
		}
	}

	if _, err := p.ReadReport(ctx, good, ReportErrors); !errors.Is(err, ErrNoReport) {
		t.Errorf("errors.csv of an imported drop: %v, want ErrNoReport", err)
	}
	unfinished := *bad
	unfinished.Finished, unfinished.FinalKey = false, ""
	if _, err := p.ReadReport(ctx, &unfinished, ReportStatus); !errors.Is(err, ErrNoReport) {
		t.Errorf("report of an unfinished drop: %v, want ErrNoReport", err)
	}
	elsewhere := *bad
	elsewhere.Source = "gone"
	if _, err := p.ReadReport(ctx, &elsewhere, ReportStatus); !errors.Is(err, ErrNoReport) {
		t.Errorf("report from a source no longer configured: %v, want ErrNoReport", err)
	}
	if err := os.Remove(filepath.Join(e.dropDir, "failed/bad.csv.errors.csv")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.ReadReport(ctx, bad, ReportErrors); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("report deleted by someone: %v, want fs.ErrNotExist", err)
	}
}
