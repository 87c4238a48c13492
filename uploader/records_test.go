package uploader

import (
	"archive/zip"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"usagedrop/zuorasim"
)

// genCSV returns a template CSV of n records dated in MM/DD/YYYY.
func genCSV(n int) string {
	var b strings.Builder
	b.WriteString("ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,DESCRIPTION\r\n")
	for i := range n {
		fmt.Fprintf(&b, "A%08d,GB,%d.5,03/%02d/2026,,S-%d,,\"row %d, ok\"\r\n", i, i, i%28+1, i, i)
	}
	return b.String()
}

// zipPart writes content as the one CSV of a zip part.
func zipPart(t *testing.T, name, content string) Part {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	w, _ := zw.Create(strings.TrimSuffix(name, ".zip") + ".csv")
	_, _ = w.Write([]byte(content))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return Part{Name: name, Path: path}
}

func TestObjectImport(t *testing.T) {
	r := newRig(t, zuorasim.Options{}, nil)
	obj := NewObjectImport(r.cl, "")
	p := zipPart(t, "objects.zip", genCSV(40))
	ctx := context.Background()
	for range 2 { // the second submit replays every record's first answer
		rc, err := obj.Submit(ctx, p, "obj-key")
		if err != nil {
			t.Fatal(err)
		}
		if st, err := obj.Status(ctx, rc); err != nil || st.State != Completed {
			t.Fatalf("status %+v, %v", st, err)
		}
	}
	recs := r.sim.Records()
	if len(recs) != 40 {
		t.Fatalf("%d records, want 40 once each", len(recs))
	}
	seen := map[string]bool{}
	for _, rec := range recs {
		seen[rec.Account] = true
		if rec.UOM != "GB" || !strings.HasPrefix(rec.Start, "2026-03-") || !strings.HasSuffix(rec.Qty, ".5") || !strings.HasSuffix(rec.Description, ", ok") {
			t.Fatalf("record %+v", rec)
		}
	}
	if len(seen) != 40 {
		t.Fatalf("%d distinct accounts, want 40", len(seen))
	}
}

// A record with a UniqueKey goes with X-Zuora-WSDL-Version 114 or higher,
// below which the object API does not know the field; the simulator
// refuses it there, as rejectUnknownFields asks.
func TestObjectImportUniqueKeyNeedsWSDL114(t *testing.T) {
	r := newRig(t, zuorasim.Options{}, nil)
	csv := "ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,UNIQUE_KEY\r\nA1,GB,1,03/01/2026,,,,uk-1\r\n"
	if _, err := NewObjectImport(r.cl, "").Submit(context.Background(), zipPart(t, "uk.zip", csv), "uk-key"); err != nil {
		t.Fatalf("submit: %v", err)
	}
	if recs := r.sim.Records(); len(recs) != 1 || recs[0].UniqueKey != "uk-1" {
		t.Fatalf("records %+v", recs)
	}
	if got := newerWSDL("146.0", "114.0"); got != "146.0" {
		t.Fatalf("newerWSDL kept %q", got)
	}
	if got := newerWSDL("", "114.0"); got != "114.0" {
		t.Fatalf("newerWSDL with none configured: %q", got)
	}
	// Without the header the simulator refuses the field.
	_, err := r.cl.do(context.Background(), call{
		op: "object", method: http.MethodPost, url: "/v1/object/usage?rejectUnknownFields=true", idempotencyKey: "uk-raw",
		body: jsonBody([]byte(`{"AccountNumber":"A1","UOM":"GB","Quantity":1,"StartDateTime":"2026-03-01T00:00:00","UniqueKey":"uk-2"}`)),
	})
	if e := zerr(t, err); e.HTTPStatus != http.StatusBadRequest || e.Retryable {
		t.Fatalf("UniqueKey without WSDL 114: %+v, want a final 400", e)
	}
}

func TestObjectImportStopsAtBadRecord(t *testing.T) {
	r := newRig(t, zuorasim.Options{UOMs: []string{"GB"}}, nil)
	obj := NewObjectImport(r.cl, "DD/MM/YYYY")
	obj.Concurrency = 1
	csv := "ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID\n" +
		"A1,GB,1,31/03/2026,,,\nA2,GB,2,01/04/2026,,,\nA3,TB,3,02/04/2026,,,\nA4,GB,4,03/04/2026,,,\n"
	_, err := obj.Submit(context.Background(), part(t, "o.csv", csv), "bad-obj")
	e := zerr(t, err)
	if e.Retryable || !strings.Contains(e.Message, "o.csv line 4") || !strings.Contains(e.Message, "The UOM TB is invalid") {
		t.Fatalf("error %+v", e)
	}
	recs := r.sim.Records()
	// No atomicity: the two records before the bad one exist.
	if len(recs) != 2 || recs[0].Start != "2026-03-31" || recs[1].Account != "A2" {
		t.Fatalf("records %+v", recs)
	}
}

// BenchmarkObjectImport1000 sends a part of 1,000 records one call each to
// the sim over loopback, four at a time.
func BenchmarkObjectImport1000(b *testing.B) {
	srv := httptest.NewServer(zuorasim.New(zuorasim.Options{}))
	defer srv.Close()
	path := filepath.Join(b.TempDir(), "p.csv")
	if err := os.WriteFile(path, []byte(genCSV(1000)), 0o600); err != nil {
		b.Fatal(err)
	}
	obj := NewObjectImport(NewClient(Config{BaseURL: srv.URL}), "")
	start := time.Now()
	n := 0
	for i := 0; b.Loop(); i++ {
		if _, err := obj.Submit(context.Background(), Part{Name: "p.csv", Path: path}, "bench-"+strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n*1000)/time.Since(start).Seconds(), "records/s")
}
