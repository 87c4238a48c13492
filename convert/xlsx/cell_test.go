package xlsx

import (
	"strconv"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

func TestDecimal(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"0.30000000000000004", "0.3"},
		{"1E+20", "100000000000000000000"},
		{"1e20", "100000000000000000000"},
		{"7.75", "7.75"},
		{"3.125", "3.125"},
		{"-0.25", "-0.25"},
		{"0", "0"},
		{"-0", "0"},
		{"100", "100"},
		{"1234567.5", "1234567.5"},
		{"1.5E-7", "0.00000015"},
		{"2.9999999999999996", "3"},
		{"123456789012345678", "123456789012346000"},
		{"0.1234567890123456789", "0.123456789012346"},
		{"99999999999999.99", "100000000000000"},
		{"12345.678901234567", "12345.6789012346"},
		{" 42 ", "42"},
	}
	for _, tt := range tests {
		got, err := Cell{Kind: Number, Value: tt.in}.Decimal()
		if err != nil || got != tt.want {
			t.Errorf("Decimal(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, c := range []Cell{{Kind: String, Value: "1"}, {Kind: Number, Value: "abc"}, {Kind: Number, Value: "Inf"}, {}} {
		if got, err := c.Decimal(); err == nil {
			t.Errorf("Decimal(%+v) = %q, want an error", c, got)
		}
	}
}

// TestShortDecimal checks the fast path against the float path on the
// numbers it takes.
func TestShortDecimal(t *testing.T) {
	ins := []string{"0", "00", "0.0", "007", "7.50", "-0.000", "-12.340", "0.125", "123456789012345", "1234567890.12345", "0.000000000000001", "10", "100.000"}
	for i := 0; i < 20000; i++ {
		ins = append(ins, strconv.FormatFloat(float64(i*7919%100003)/float64(1+i%97), 'f', i%9, 64))
	}
	for _, in := range ins {
		got, ok := shortDecimal(in)
		f, err := strconv.ParseFloat(in, 64)
		if !ok || err != nil {
			t.Fatalf("shortDecimal(%q) not taken", in)
		}
		if want := plainDecimal(f); got != want {
			t.Fatalf("shortDecimal(%q) = %q, float path %q", in, got, want)
		}
	}
	for _, in := range []string{"", "-", ".5", "5.", "1e5", "1234567890123456", " 1", "1,5", "--1", "1.2.3"} {
		if got, ok := shortDecimal(in); ok {
			t.Errorf("shortDecimal(%q) = %q, want it left to the float path", in, got)
		}
	}
}

func TestTime(t *testing.T) {
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	tests := []struct {
		cell     Cell
		date1904 bool
		want     time.Time
	}{
		{Cell{Kind: Number, Value: "46086"}, false, day(2026, 3, 5)},
		{Cell{Kind: Number, Value: "44624"}, true, day(2026, 3, 5)},
		{Cell{Kind: Number, Value: "46086.5"}, false, day(2026, 3, 5).Add(12 * time.Hour)},
		{Cell{Kind: Number, Value: "46086.999999999"}, false, day(2026, 3, 5).Add(24*time.Hour - time.Millisecond).Add(time.Millisecond)},
		{Cell{Kind: Number, Value: "1"}, false, day(1900, 1, 1)},
		{Cell{Kind: Number, Value: "59"}, false, day(1900, 2, 28)},
		{Cell{Kind: Number, Value: "60"}, false, day(1900, 3, 1)},
		{Cell{Kind: Number, Value: "61"}, false, day(1900, 3, 1)},
		{Cell{Kind: Number, Value: "0"}, true, day(1904, 1, 1)},
		{Cell{Kind: Number, Value: "2958465"}, false, day(9999, 12, 31)},
		{Cell{Kind: Date, Value: "2026-03-05T00:00:00"}, false, day(2026, 3, 5)},
		{Cell{Kind: Date, Value: "2026-03-05T10:30:00Z"}, false, day(2026, 3, 5).Add(10*time.Hour + 30*time.Minute)},
		{Cell{Kind: Date, Value: "2026-03-05"}, true, day(2026, 3, 5)},
	}
	for _, tt := range tests {
		got, err := tt.cell.Time(tt.date1904)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("Time(%+v, 1904=%v) = %v, %v; want %v", tt.cell, tt.date1904, got, err, tt.want)
		}
	}
	for _, c := range []Cell{{Kind: Number, Value: "-1"}, {Kind: Number, Value: "2958466"}, {Kind: Number, Value: "x"}, {Kind: String, Value: "2026-03-05"}, {Kind: Date, Value: "5 March"}} {
		if got, err := c.Time(false); err == nil {
			t.Errorf("Time(%+v) = %v, want an error", c, got)
		}
	}
}

// TestTimeMatchesExcelize checks whole-day serials against excelize's
// conversion, which agrees with Excel from serial 61 on and in 1904.
func TestTimeMatchesExcelize(t *testing.T) {
	for _, date1904 := range []bool{false, true} {
		for serial := 61; serial < maxSerial-1462; serial += 997 {
			want, err := excelize.ExcelDateToTime(float64(serial), date1904)
			must(t, err)
			got, err := Cell{Kind: Number, Value: strconv.Itoa(serial)}.Time(date1904)
			if err != nil || !got.Equal(want) {
				t.Fatalf("serial %d (1904=%v): got %v, %v; excelize %v", serial, date1904, got, err, want)
			}
		}
	}
}
