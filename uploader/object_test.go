package uploader

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"usagedrop/zuorasim"
)

// noted collects the records SubmitRecords reports created.
type noted struct {
	mu   sync.Mutex
	byID map[string]string
}

func (n *noted) created(c CreatedRecord) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.byID == nil {
		n.byID = map[string]string{}
	}
	if c.ZuoraID == "" {
		return errors.New("created without an id")
	}
	n.byID[c.ID] = c.ZuoraID
	return nil
}

func (n *noted) done() map[string]string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[string]string{}
	for k, v := range n.byID {
		out[k] = v
	}
	return out
}

// A part stopped by a refused record says which records were created
// (with their ids), which was refused and which were not sent; sent again
// with what was created, only the missing records go, and each record is
// in Zuora once.
func TestSubmitRecordsStopsAndResumes(t *testing.T) {
	r := newRig(t, zuorasim.Options{UOMs: []string{"GB"}}, nil)
	obj := NewObjectImport(r.cl, "")
	obj.Concurrency = 1
	rows := []string{"A1,GB,1", "A2,GB,2", "A3,TB,3", "A4,GB,4", "A5,GB,5"}
	csv := func(rows []string) string {
		var b strings.Builder
		b.WriteString("ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID\n")
		for _, row := range rows {
			b.WriteString(row + ",03/01/2026,,,\n")
		}
		return b.String()
	}
	p := part(t, "o.csv", csv(rows))
	ids, err := obj.RecordIDs(p, nil)
	if err != nil || len(ids) != 5 {
		t.Fatalf("ids %v, %v", ids, err)
	}
	var n noted
	_, err = obj.SubmitRecords(context.Background(), p, "k1", ids, nil, n.created)
	var re *RecordsError
	if !errors.As(err, &re) || IsRetryable(err) {
		t.Fatalf("error %v (%T), want a final *RecordsError", err, err)
	}
	if c, rf, ns := re.Counts(); c != 2 || rf != 1 || ns != 2 {
		t.Fatalf("counts created %d refused %d not sent %d", c, rf, ns)
	}
	got := strings.Join(re.Detail(0, 10), "; ")
	for _, want := range []string{"records 1-2 were created in Zuora (ids ", "record 3 (account A3, unit TB, date 2026-03-01) was refused by Zuora: ",
		"The UOM TB is invalid", "records 4-5 were not sent"} {
		if !strings.Contains(got, want) {
			t.Fatalf("detail %q lacks %q", got, want)
		}
	}
	for _, id := range n.done() {
		if !strings.Contains(got, id) {
			t.Fatalf("detail %q lacks the id %s", got, id)
		}
	}
	if len(r.sim.Records()) != 2 || len(n.done()) != 2 {
		t.Fatalf("%d records in Zuora, %d noted; want 2", len(r.sim.Records()), len(n.done()))
	}

	// The fixed file: the same records, the bad one corrected, one more
	// line above them, so every line moved. Under a new key (a re-drop).
	rows[2] = "A3,GB,3"
	fixed := part(t, "o2.csv", csv(append([]string{"A0,GB,9"}, rows...)))
	ids2, err := obj.RecordIDs(fixed, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ids2[1] != ids[0] || ids2[2] != ids[1] || ids2[3] == ids[2] {
		t.Fatalf("ids do not follow the records' content: %v vs %v", ids2, ids)
	}
	rc, err := obj.SubmitRecords(context.Background(), fixed, "k2", ids2, n.done(), n.created)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := obj.Status(context.Background(), rc)
	if st.State != Completed || st.Imported != 6 || !strings.Contains(st.Message, "6 records created one by one, 2 of them before") {
		t.Fatalf("status %+v", st)
	}
	accounts := map[string]int{}
	for _, rec := range r.sim.Records() {
		accounts[rec.Account]++
	}
	if len(accounts) != 6 {
		t.Fatalf("records in Zuora: %v, want A0-A5 once each", accounts)
	}
	for a, c := range accounts {
		if c != 1 {
			t.Fatalf("%s is in Zuora %d times", a, c)
		}
	}
}

// Identical records in one drop are distinct records: each has its own id,
// across parts too.
func TestRecordIDsCountIdenticalRecords(t *testing.T) {
	obj := NewObjectImport(nil, "")
	body := "ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID\nA1,GB,1,03/01/2026,,,\nA1,GB,1,03/01/2026,,,\n"
	seen := map[string]int{}
	a, err := obj.RecordIDs(part(t, "a.csv", body), seen)
	if err != nil {
		t.Fatal(err)
	}
	b, err := obj.RecordIDs(part(t, "b.csv", body), seen)
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]bool{}
	for _, id := range append(a, b...) {
		if len(id) != 32 || all[id] {
			t.Fatalf("ids %v %v: not 4 distinct ids of 32 hex digits", a, b)
		}
		all[id] = true
	}
	// The object API has no field for PRODUCT_RATE_PLAN_CHARGE_ID: such
	// a part is refused before a record is sent.
	prpc := "ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,PRODUCT_RATE_PLAN_CHARGE_ID\nA1,GB,1,03/01/2026,,,,PRPC-1\n"
	_, err = obj.RecordIDs(part(t, "c.csv", prpc), nil)
	if err == nil || IsRetryable(err) || !strings.Contains(err.Error(), "PRODUCT_RATE_PLAN_CHARGE_ID: the object API has no field for it") {
		t.Fatalf("PRODUCT_RATE_PLAN_CHARGE_ID: %v", err)
	}
}

// Server errors are retried record by record, under each record's key:
// every record ends in Zuora once.
func TestSubmitRecordsRetriesServerErrors(t *testing.T) {
	r := newRig(t, zuorasim.Options{}, func(c *Config) { c.MaxAttempts = 8 })
	obj := NewObjectImport(r.cl, "")
	p := zipPart(t, "objects.zip", genCSV(30))
	r.sim.SetFaults(zuorasim.Faults{ServerErrors: 10})
	ids, err := obj.RecordIDs(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A record that saw only errors stops the part (retryable); the next
	// try, as the pipeline makes it, sends only what is not noted.
	var n noted
	for try := 0; ; try++ {
		_, err := obj.SubmitRecords(context.Background(), p, "k5xx", ids, n.done(), n.created)
		if err == nil {
			break
		}
		if !IsRetryable(err) || try == 10 {
			t.Fatalf("try %d: %v", try+1, err)
		}
	}
	if got := len(r.sim.Records()); got != 30 || len(n.done()) != 30 {
		t.Fatalf("%d records in Zuora, %d noted; want 30", got, len(n.done()))
	}
}

// A 500 Zuora stored under a record's key is replayed for that key: the
// record's fate stays unknown, so the part stops with a retryable error
// after the records in flight are noted, and a later try sends only the
// records not noted.
func TestSubmitRecordsStoredServerError(t *testing.T) {
	r := newRig(t, zuorasim.Options{IdempotencyTTL: 300 * time.Millisecond}, func(c *Config) { c.MaxAttempts = 2 })
	obj := NewObjectImport(r.cl, "")
	obj.Concurrency = 1
	p := zipPart(t, "objects.zip", genCSV(10))
	ids, err := obj.RecordIDs(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	var n noted
	r.sim.SetFaults(zuorasim.Faults{StoredObjectErrors: 1})
	_, err = obj.SubmitRecords(context.Background(), p, "kst", ids, nil, n.created)
	if !IsRetryable(err) {
		t.Fatalf("a stored 500: %v, want a retryable error", err)
	}
	if got := len(n.done()); got != 0 || len(r.sim.Records()) != 0 {
		t.Fatalf("%d noted, %d in Zuora; want none (the first record stopped the part)", got, len(r.sim.Records()))
	}
	// Zuora forgets the key; the record, never created, is sent again.
	time.Sleep(400 * time.Millisecond)
	if _, err := obj.SubmitRecords(context.Background(), p, "kst", ids, n.done(), n.created); err != nil {
		t.Fatal(err)
	}
	if len(r.sim.Records()) != 10 {
		t.Fatalf("%d records, want 10", len(r.sim.Records()))
	}
}

// The report's sentences: runs of records with the same fate, numbered
// after the drop's earlier parts, with at most maxIDs ids.
func TestRecordsErrorDetail(t *testing.T) {
	c := func(id string) recordOutcome { return recordOutcome{created: true, zuoraID: id} }
	ref := recordOutcome{which: "account A1, unit TB, date 2026-03-01", refused: "The UOM TB is invalid"}
	tests := []struct {
		name          string
		outs          []recordOutcome
		first, maxIDs int
		want          []string
	}{
		{"refused first", []recordOutcome{ref, {}, {}}, 0, 10,
			[]string{"record 1 (account A1, unit TB, date 2026-03-01) was refused by Zuora: The UOM TB is invalid", "records 2-3 were not sent"}},
		{"after earlier parts", []recordOutcome{c("z1"), c("z2"), ref, {}}, 100, 10,
			[]string{"records 101-102 were created in Zuora (ids z1, z2)", "record 103 (account A1, unit TB, date 2026-03-01) was refused by Zuora: The UOM TB is invalid", "record 104 was not sent"}},
		{"ids capped", []recordOutcome{c("z1"), c("z2"), c("z3"), ref, c("z5")}, 0, 2,
			[]string{"records 1-3 were created in Zuora (ids z1, z2, … (no more ids are listed))", "record 4 (account A1, unit TB, date 2026-03-01) was refused by Zuora: The UOM TB is invalid", "record 5 was created in Zuora"}},
		{"no ids", []recordOutcome{c("z1"), ref, ref, {unknown: true}}, 0, 0,
			[]string{"record 1 was created in Zuora", "record 2 (account A1, unit TB, date 2026-03-01) was refused by Zuora: The UOM TB is invalid",
				"record 3 (account A1, unit TB, date 2026-03-01) was refused by Zuora: The UOM TB is invalid", "record 4 was sent, and whether Zuora created it is unknown"}},
		{"created without an id", []recordOutcome{c(""), ref}, 0, 5,
			[]string{"record 1 was created in Zuora (ids ?)", "record 2 (account A1, unit TB, date 2026-03-01) was refused by Zuora: The UOM TB is invalid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &RecordsError{Part: "p.csv", outs: tt.outs}
			got := e.Detail(tt.first, tt.maxIDs)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// Every text value of a row is part of its identity, and nothing else:
// two records differing in any value are different records.
func TestRecordContentHasEveryValue(t *testing.T) {
	var base row
	base.Index, base.Line = 3, 4
	base.Account, base.UOM, base.Qty, base.Start = "A1", "GB", "1", "2026-03-01"
	moved := base
	moved.Index, moved.Line = 40, 41
	if base.content() != moved.content() {
		t.Fatal("a record's place changed its identity")
	}
	// Change each text field of the row in turn, however deep (an
	// embedded record, a slice of custom values): each is a new record.
	seen := map[string]bool{base.content(): true}
	var fields func(prefix string, t reflect.Type, path []int)
	n := 0
	fields = func(prefix string, typ reflect.Type, path []int) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			p := append(append([]int(nil), path...), i)
			switch f.Type.Kind() {
			case reflect.Struct:
				fields(prefix+f.Name+".", f.Type, p)
			case reflect.String, reflect.Slice:
				r := base
				fv := reflect.ValueOf(&r).Elem().FieldByIndex(p)
				if fv.Kind() == reflect.String {
					fv.SetString("changed")
				} else {
					fv.Set(reflect.ValueOf([]string{"changed"}))
				}
				if seen[r.content()] {
					t.Errorf("field %s%s is not part of the record's identity", prefix, f.Name)
				}
				seen[r.content()] = true
				n++
			}
		}
	}
	fields("", reflect.TypeOf(base), nil)
	if n < 10 {
		t.Fatalf("only %d text fields found in a row", n)
	}
	// Embedded structs and slices (custom fields) count too, each value
	// in its place; an empty value is no value.
	type inner struct{ A, B string }
	type outer struct {
		inner
		N      int
		Custom []string
	}
	tests := []struct {
		a, b outer
		same bool
	}{
		{outer{}, outer{N: 1}, true},
		{outer{Custom: []string{"x"}}, outer{Custom: []string{"x", ""}}, true},
		{outer{inner: inner{A: "x"}}, outer{inner: inner{B: "x"}}, false},
		{outer{Custom: []string{"x"}}, outer{Custom: []string{"", "x"}}, false},
		{outer{Custom: []string{"x"}}, outer{inner: inner{A: "x"}}, false},
		{outer{Custom: []string{"x"}}, outer{Custom: []string{"y"}}, false},
	}
	for _, tt := range tests {
		if got := valuesOf(tt.a) == valuesOf(tt.b); got != tt.same {
			t.Errorf("%+v and %+v: same content %v, want %v", tt.a, tt.b, got, tt.same)
		}
	}
}
