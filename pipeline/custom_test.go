package pipeline

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"usagedrop/config"
	"usagedrop/convert"
	"usagedrop/uploader"
	"usagedrop/zuorasim"
)

// TestCustomFieldsEndToEnd sends a file with a custom field through the
// file, object and SOAP APIs to a sim whose Usage object has Region__c and no
// other custom field: every record arrives once with its region, a blank
// region is not sent, and the column is found by its own name, by its
// name without "__c", or by a source's columns: map.
func TestCustomFieldsEndToEnd(t *testing.T) {
	for _, api := range []string{"file", "object", "soap"} {
		for _, tc := range []struct {
			name, header string
			columns      map[string]string
		}{
			{"own name", "Region__c", nil},
			{"name without __c", "Region", nil},
			{"mapped", "Sales Region", map[string]string{"Region__c": "Sales Region"}},
		} {
			t.Run(api+"/"+tc.name, func(t *testing.T) {
				customFieldsEndToEnd(t, api, tc.header, tc.columns)
			})
		}
	}
}

func customFieldsEndToEnd(t *testing.T, api, header string, columns map[string]string) {
	c, err := config.Parse(strings.NewReader("zuora:\n  api: " + api + "\n  custom_fields: [Region__c]\nsources:\n  - {name: a, type: local, path: x}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	tmpl := Template(c.Zuora)
	regions := []string{"EMEA", "", "Zürich, CH", `APAC "north"`}
	var in bytes.Buffer
	fmt.Fprintf(&in, "Account Number,UOM,Quantity,Usage Date,%s,Notes\n", header)
	for i := range 20 {
		region := `"` + strings.ReplaceAll(regions[i%len(regions)], `"`, `""`) + `"`
		fmt.Fprintf(&in, "A%04d,GB,%d.5,2026-03-%02d,%s,ignored\n", i, i, 1+i, region)
	}
	dir := t.TempDir()
	res, err := convert.Convert(context.Background(), "regions.csv", "c0ffee", bytes.NewReader(in.Bytes()), int64(in.Len()),
		convert.Options{Columns: columns}, tmpl, convert.Limits{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rejected() || len(res.Parts) != 1 || res.Records != 20 {
		t.Fatalf("converted %d records into %d parts, problems %+v", res.Records, len(res.Parts), res.Problems)
	}

	sim := zuorasim.New(zuorasim.Options{CustomFields: []string{"Region__c"}, ProcessingDelay: -1})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	cl := uploader.NewClient(uploader.Config{BaseURL: srv.URL, ClientID: "id", ClientSecret: "secret", Logger: slog.New(slog.DiscardHandler)})
	var up uploader.Uploader = uploader.NewFileImport(cl)
	switch api {
	case "object":
		up = uploader.NewObjectImport(cl, c.Zuora.DateFormat)
	case "soap":
		up = uploader.NewSOAPImport(cl, srv.URL+"/apps/services/a/119.0", "user", "pass")
	}
	p := res.Parts[0]
	rc, err := up.Submit(context.Background(), uploader.Part{Name: p.Name, Path: p.Path, Size: p.Size, SHA256: p.SHA256}, "key-"+api)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := up.Status(context.Background(), rc)
		if err != nil {
			t.Fatal(err)
		}
		if st.State.Final() {
			if st.State != uploader.Completed {
				t.Fatalf("import ended %s: %s", st.State, st.Message)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("import still %s", st.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
	recs := sim.Records()
	if len(recs) != 20 {
		t.Fatalf("the sim holds %d records, want 20", len(recs))
	}
	seen := map[string]bool{}
	for _, r := range recs {
		var i int
		if _, err := fmt.Sscanf(r.Account, "A%04d", &i); err != nil || seen[r.Account] {
			t.Fatalf("unexpected or repeated record %+v", r)
		}
		seen[r.Account] = true
		want := regions[i%len(regions)]
		got, ok := r.Custom["Region__c"]
		if got != want || ok != (want != "") || len(r.Custom) > 1 {
			t.Errorf("%s: custom fields %q, want Region__c %q", r.Account, r.Custom, want)
		}
	}
}

// TestCustomFieldMediation maps a custom field onto a meter's field: each
// event carries it, a blank one is left out, and the meter, whose schema
// is the mapping's, refuses none.
func TestCustomFieldMediation(t *testing.T) {
	c, err := config.Parse(strings.NewReader("zuora:\n  api: mediation\n  meter: meter-1\n  custom_fields: [Region__c]\n" +
		"  event:\n    fields: {Region__c: Region}\n    dedupe_field: EventId\nsources:\n  - {name: a, type: local, path: x}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	z := c.Zuora
	var in bytes.Buffer
	in.WriteString("Account Number,UOM,Quantity,Usage Date,Region\n")
	regions := []string{"EMEA", "", `APAC "north"`}
	for i := range 9 {
		fmt.Fprintf(&in, "A%04d,GB,%d,2026-03-%02d,\"%s\"\n", i, i, 1+i, strings.ReplaceAll(regions[i%3], `"`, `""`))
	}
	var tmpl bytes.Buffer
	sum, err := convert.WriteTemplate(context.Background(), "r.csv", bytes.NewReader(in.Bytes()), int64(in.Len()), convert.Options{}, Template(z), &tmpl)
	if err != nil || sum.Rejected() || sum.Records != 9 {
		t.Fatalf("%d records, problems %+v, %v", sum.Records, sum.Problems, err)
	}
	zu, err := BuildZuora(z, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer zu.Close()
	path := filepath.Join(t.TempDir(), "p.csv")
	if err := os.WriteFile(path, tmpl.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := zu.Uploader.Submit(context.Background(), uploader.Part{Name: "p.csv", Path: path}, "key-0"); err != nil {
		t.Fatal(err)
	}
	if rej := zu.Sim.MediationRejected(); len(rej) > 0 {
		t.Fatalf("%d events refused by the meter, first %+v", len(rej), rej[0])
	}
	recs := zu.Sim.Records()
	if len(recs) != 9 {
		t.Fatalf("the meter holds %d events, want 9", len(recs))
	}
	for _, r := range recs {
		var i int
		fmt.Sscanf(r.Account, "A%04d", &i)
		want := map[int]string{0: `"Region":"EMEA"`, 2: `"Region":"APAC \"north\""`}[i%3]
		if has := strings.Contains(r.Event, `"Region"`); has != (want != "") || !strings.Contains(r.Event, want) {
			t.Errorf("%s: event %s, want it to hold %s", r.Account, r.Event, cmp.Or(want, "no Region"))
		}
	}
}
