package pipeline

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"usagedrop/config"
	"usagedrop/convert"
	"usagedrop/internal/testutil"
	"usagedrop/uploader"
)

// mediationConfig parses a config for api: mediation on the builtin
// simulator with the given lines under zuora.event.
func mediationConfig(t *testing.T, event string) config.Zuora {
	t.Helper()
	y := "zuora:\n  api: mediation\n  meter: meter-1\n"
	if event != "" {
		y += "  event:\n" + event
	}
	c, err := config.Parse(strings.NewReader(y + "sources:\n  - {name: a, type: local, path: x}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c.Zuora
}

// convertFixture converts a shared fixture with the template of z.
func convertFixture(t *testing.T, z config.Zuora, name string) (convert.Summary, []byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.Fixtures(t), name))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	sum, err := convert.WriteTemplate(context.Background(), name, bytes.NewReader(b), int64(len(b)), convert.Options{}, Template(z), &out)
	if err != nil {
		t.Fatal(err)
	}
	return sum, out.Bytes()
}

// With the default mapping a subscription or charge has no event field:
// the rows that carry one are rejected, never sent without it (usage with
// no subscription is applied to every subscription of the account).
func TestMediationTemplateRefusesUnmappedValues(t *testing.T) {
	sum, _ := convertFixture(t, mediationConfig(t, ""), "partner-template.csv")
	var first *convert.Problem
	cols := map[string]int{}
	for i, p := range sum.Problems {
		cols[p.Column]++
		if first == nil {
			first = &sum.Problems[i]
		}
	}
	if first == nil || first.Line != 2 || first.Column != "SUBSCRIPTION_ID" || first.Value != "A-S00000011" {
		t.Fatalf("first problem %+v, want line 2 SUBSCRIPTION_ID A-S00000011", first)
	}
	if cols["SUBSCRIPTION_ID"] == 0 || cols["CHARGE_ID"] == 0 || cols["ENDDATE"] == 0 || cols["DESCRIPTION"] == 0 {
		t.Fatalf("problems by column %v, want each unmapped column named", cols)
	}
}

// Mapped, the same file goes through the builtin simulator's meter, whose
// schema is the mapping's: every event conforms, each record once.
func TestMediationBuiltinEndToEnd(t *testing.T) {
	z := mediationConfig(t, "    fields:\n      ENDDATE: EndDate\n      SUBSCRIPTION_ID: SubscriptionNumber\n"+
		"      CHARGE_ID: ChargeNumber\n      DESCRIPTION: Description\n    time_zone: Europe/Paris\n    dedupe_field: EventId\n")
	sum, tmpl := convertFixture(t, z, "partner-template.csv")
	if len(sum.Problems) > 0 || sum.Records != 1000 {
		t.Fatalf("%d records, problems %+v", sum.Records, sum.Problems)
	}
	if !bytes.HasPrefix(tmpl, []byte("ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,DESCRIPTION\r\n")) {
		t.Fatalf("template header %q", tmpl[:80])
	}
	zu, err := BuildZuora(z, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer zu.Close()
	path := filepath.Join(t.TempDir(), "p.csv")
	if err := os.WriteFile(path, tmpl, 0o600); err != nil {
		t.Fatal(err)
	}
	rc, err := zu.Uploader.Submit(context.Background(), uploader.Part{Name: "p.csv", Path: path}, "key-0")
	if err != nil {
		t.Fatal(err)
	}
	st, err := zu.Uploader.Status(context.Background(), rc)
	if err != nil || st.Message != "sent to Mediation (1000 events accepted for processing)" {
		t.Fatalf("status %+v, %v", st, err)
	}
	if rej := zu.Sim.MediationRejected(); len(rej) > 0 {
		t.Fatalf("%d events refused by the meter, first %+v", len(rej), rej[0])
	}
	recs := zu.Sim.Records()
	if len(recs) != 1000 || !strings.Contains(recs[0].Event, `"UsageDate":"2026-03-16T00:00:00+01:00"`) || recs[0].UniqueKey == "" {
		t.Fatalf("%d records, first %+v", len(recs), recs[0])
	}
}
