package usage

import (
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestLen(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"", 0},
		{"A00000001", 9},
		{"Zürich", 6}, // two-byte é: one unit
		{"東京", 2},     // three-byte CJK in the BMP: one unit each
		{"😀", 2},      // outside the BMP: a surrogate pair
		{"a😀b", 4},
		{"𠀀", 2},            // CJK Extension B, outside the BMP
		{"\xff\xfe", 2},     // not UTF-8: one per byte
		{"\xf0\x9f\x98", 3}, // a cut four-byte sequence: one per byte
	} {
		if got := Len(tc.in); got != tc.want {
			t.Errorf("Len(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// TestLimits holds every field at its limit and one past it, with
// characters of one, two and three bytes and with emoji counted two.
func TestLimits(t *testing.T) {
	for _, tc := range []struct {
		f   Field
		max int
	}{
		{Account, 50}, {Subscription, 100}, {Charge, 50}, {Description, 200},
		{UniqueKey, 254}, {RatePlanCharge, 32}, {Qty, 16}, {UOM, 0}, {Start, 0},
	} {
		if got := tc.f.MaxLen(); got != tc.max {
			t.Errorf("%s.MaxLen() = %d, want %d", tc.f, got, tc.max)
		}
		if tc.max == 0 {
			if tc.f.TooLong(strings.Repeat("x", 10000)) {
				t.Errorf("%s has no limit, but TooLong says so", tc.f)
			}
			continue
		}
		for _, unit := range []string{"x", "é", "東"} {
			if s := strings.Repeat(unit, tc.max); tc.f.TooLong(s) {
				t.Errorf("%s: %d × %q is at the limit, TooLong says too long", tc.f, tc.max, unit)
			}
			if s := strings.Repeat(unit, tc.max+1); !tc.f.TooLong(s) {
				t.Errorf("%s: %d × %q is past the limit, TooLong says fine", tc.f, tc.max+1, unit)
			}
		}
		// max-1 units and an emoji: max+1 UTF-16 units, though only max runes.
		if s := strings.Repeat("x", tc.max-1) + "😀"; !tc.f.TooLong(s) {
			t.Errorf("%s: %d runes ending in an emoji are %d UTF-16 units; TooLong says fine", tc.f, tc.max, tc.max+1)
		}
		if s := strings.Repeat("x", tc.max-2) + "😀"; tc.f.TooLong(s) {
			t.Errorf("%s: an emoji in exactly %d units; TooLong says too long", tc.f, tc.max)
		}
	}
}

func TestRequired(t *testing.T) {
	var value, header []string
	for f := range NumFields {
		if f.RequiredValue() {
			value = append(value, f.Column())
		}
		if f.RequiredHeader() {
			header = append(header, f.Column())
		}
	}
	if want := []string{"ACCOUNT_ID", "UOM", "QTY", "STARTDATE"}; !reflect.DeepEqual(value, want) || !reflect.DeepEqual(RequiredValues(), want) {
		t.Errorf("required values %v, RequiredValues() %v, want %v", value, RequiredValues(), want)
	}
	if want := []string{"ACCOUNT_ID", "UOM", "QTY", "STARTDATE", "ENDDATE", "SUBSCRIPTION_ID", "CHARGE_ID"}; !reflect.DeepEqual(header, want) {
		t.Errorf("required headers %v, want %v", header, want)
	}
}

func TestMinWSDL(t *testing.T) {
	for f := range NumFields {
		want := 0
		if f == RatePlanCharge {
			want = 146
		}
		if got := f.MinWSDL(); got != want {
			t.Errorf("%s.MinWSDL() = %d, want %d", f, got, want)
		}
	}
}

func TestUpload(t *testing.T) {
	if MaxFileSize != 4194304 || MaxNameLen != 50 {
		t.Errorf("upload limits %d bytes, %d characters; Zuora's are 4194304 and 50", MaxFileSize, MaxNameLen)
	}
	for name, want := range map[string]string{"a.csv": ".csv", "A.ZIP": ".zip", "a.xlsx": "", "csv": "", "a.csv.gz": ""} {
		if got := UploadExt(name); got != want {
			t.Errorf("UploadExt(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestIsCustomField(t *testing.T) {
	for name, want := range map[string]bool{
		"Region__c": true, "Sales_Region__c": true, "R2__c": true,
		"__c": false, "Region": false, "Region__C": false, "2Region__c": false,
		"Sales__Region__c": false, "Region___c": false, "Re gion__c": false, "_Region__c": false,
	} {
		if got := IsCustomField(name); got != want {
			t.Errorf("IsCustomField(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestParseHeader(t *testing.T) {
	for _, tc := range []struct {
		in      []string
		want    []string
		custom  []string
		wantErr string
	}{
		{in: nil, want: []string{"ACCOUNT_ID", "UOM", "QTY", "STARTDATE", "ENDDATE", "SUBSCRIPTION_ID", "CHARGE_ID", "DESCRIPTION"}},
		{in: []string{"account_id", " UOM ", "QTY", "STARTDATE", "Region__c"}, want: []string{"ACCOUNT_ID", "UOM", "QTY", "STARTDATE", "Region__c"}, custom: []string{"Region__c"}},
		{in: []string{"ACCOUNT_ID", "ACCOUNT"}, wantErr: `column "ACCOUNT" is not a column`},
		{in: []string{"UOM", "uom"}, wantErr: `column "uom" appears twice`},
		{in: []string{"A__c", "A__c"}, wantErr: `column "A__c" appears twice`},
	} {
		h, err := ParseHeader(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseHeader(%q) error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseHeader(%q): %v", tc.in, err)
			continue
		}
		if got := h.Names(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseHeader(%q).Names() = %q, want %q", tc.in, got, tc.want)
		}
		if got := h.Custom(); len(got)+len(tc.custom) > 0 && !reflect.DeepEqual(got, tc.custom) {
			t.Errorf("ParseHeader(%q).Custom() = %q, want %q", tc.in, got, tc.custom)
		}
	}
	var zero Header
	if !zero.Has(Description) || zero.Has(UniqueKey) {
		t.Error("the zero Header is not the classic eight")
	}
}

func TestDates(t *testing.T) {
	for _, tc := range []struct {
		in       string
		dayFirst bool
		want     string // "" and wantErr false: empty
		wantErr  bool
	}{
		{in: "03/16/2026", want: "2026-03-16"},
		{in: "16/03/2026", dayFirst: true, want: "2026-03-16"},
		{in: "16/03/2026", wantErr: true},
		{in: "02/30/2026", wantErr: true},
		{in: "02/29/2028", want: "2028-02-29"},
		{in: "2026-03-16", wantErr: true},
		{in: "03/16/26", wantErr: true},
		{in: "+3/16/2026", wantErr: true},
		{in: ""},
	} {
		got, err := ParseDate(tc.in, tc.dayFirst)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseDate(%q, %v) = %q, %v; want %q, error %v", tc.in, tc.dayFirst, got, err, tc.want, tc.wantErr)
		}
		if tc.want != "" {
			if back := string(AppendDate(nil, got, tc.dayFirst)); back != tc.in {
				t.Errorf("AppendDate(%q, %v) = %q, want %q", got, tc.dayFirst, back, tc.in)
			}
		}
	}
	for _, f := range []string{"", "MM/DD/YYYY", "dd/mm/yyyy"} {
		if _, err := DayFirst(f); err != nil {
			t.Errorf("DayFirst(%q): %v", f, err)
		}
	}
	if _, err := DayFirst("YYYY-MM-DD"); err == nil {
		t.Error("DayFirst(YYYY-MM-DD) is no template format, but no error")
	}
}

// TestWriterRoundTrip writes records with every kind of awkward value and
// reads them back through Reader and through a plain CSV reader.
func TestWriterRoundTrip(t *testing.T) {
	recs := []Record{
		{Account: "A00000001", UOM: "GB", Qty: "3.125", Start: "2026-03-01", End: "2026-03-31", Description: "plain", Custom: []string{"EMEA"}},
		{Account: "A2", UOM: "API Calls", Qty: "1", Start: "2026-03-16", Description: `Overage, "March"` + "\nsecond line", Subscription: "A-S1", Charge: "C-1", UniqueKey: "k1", Custom: []string{" spaced "}},
		{Account: "A3", UOM: "GB", Qty: "0", Start: "2026-12-31", Description: "東京 😀 Zürich", RatePlanCharge: "2c92c0f9", Custom: nil},
	}
	for _, format := range []string{DateMDY, DateDMY} {
		h, err := ParseHeader([]string{"ACCOUNT_ID", "UOM", "QTY", "STARTDATE", "ENDDATE", "SUBSCRIPTION_ID", "CHARGE_ID", "DESCRIPTION", "UNIQUE_KEY", "PRODUCT_RATE_PLAN_CHARGE_ID", "Region__c"})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		w, err := NewWriter(&buf, h, format)
		if err != nil {
			t.Fatal(err)
		}
		for i := range recs {
			if err := w.Write(&recs[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if w.Rows() != len(recs) {
			t.Errorf("Rows() = %d, want %d", w.Rows(), len(recs))
		}
		out := buf.String()
		if !strings.HasPrefix(out, "ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,DESCRIPTION,UNIQUE_KEY,PRODUCT_RATE_PLAN_CHARGE_ID,Region__c\r\n") {
			t.Errorf("%s: header line wrong:\n%s", format, out)
		}
		wantDate := "03/01/2026"
		if format == DateDMY {
			wantDate = "01/03/2026"
		}
		if !strings.Contains(out, "\r\nA00000001,GB,3.125,"+wantDate+",") {
			t.Errorf("%s: first row not as Zuora reads it:\n%s", format, out)
		}
		r, err := NewReader(strings.NewReader(out), format)
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range recs {
			got, err := r.Read()
			if err != nil {
				t.Fatalf("%s: record %d: %v", format, i, err)
			}
			if want.Custom == nil {
				want.Custom = []string{""}
			}
			want.Custom = append([]string(nil), want.Custom...)
			want.Custom[0] = strings.TrimSpace(want.Custom[0])
			if got.Index != i || !reflect.DeepEqual(got.Record, want) {
				t.Errorf("%s: record %d read back as %+v (index %d), want %+v", format, i, got.Record, got.Index, want)
			}
		}
		if _, err := r.Read(); err != io.EOF {
			t.Errorf("%s: after the last record: %v, want io.EOF", format, err)
		}
	}
}

func TestReaderSkipsBlankRowsAndRefusesWideOnes(t *testing.T) {
	in := "ACCOUNT_ID,UOM,QTY,STARTDATE\r\n,,,\r\nA1,GB,1,03/01/2026\r\nA2,GB,2,03/02/2026,x\r\n"
	r, err := NewReader(strings.NewReader(in), "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Read()
	if err != nil || got.Account != "A1" || got.Line != 3 || got.Index != 0 || got.Start != "2026-03-01" {
		t.Fatalf("first record %+v, %v; want A1 on line 3, index 0", got, err)
	}
	if _, err := r.Read(); err == nil || !strings.Contains(err.Error(), "line 4") {
		t.Errorf("a row wider than the header: %v, want an error naming line 4", err)
	}
	if _, err := NewReader(strings.NewReader("ACCOUNT_ID,Bogus\r\n"), ""); err == nil {
		t.Error("a header with a column not in the template was read")
	}
}

func TestHasEmoji(t *testing.T) {
	for s, want := range map[string]bool{
		"plain": false, "Zürich 東京": false, "€ £ ¥ — “quotes”": false,
		"😀": true, "ok ☀ sun": true, "❤️": true, "1️⃣": true, "👨‍👩‍👧": true, "𠀀": true,
	} {
		if got := HasEmoji(s); got != want {
			t.Errorf("HasEmoji(%q) = %v, want %v", s, got, want)
		}
	}
}
