package convert

import (
	"bytes"
	"encoding/csv"
	"io"
	"slices"
	"testing"
)

// normEOL is the reference for eolReader: CRLF, then every CR left, as LF.
func normEOL(data []byte) []byte {
	data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(data, []byte("\r"), []byte("\n"))
}

// parseBoth reads data with encoding/csv, after normEOL, and with
// csvParser.
func parseBoth(data []byte, comma byte) (want, got [][]string, wantErr, gotErr error) {
	cr := csv.NewReader(bytes.NewReader(normEOL(data)))
	cr.Comma, cr.FieldsPerRecord = rune(comma), -1
	for {
		rec, err := cr.Read()
		if err != nil {
			if err != io.EOF {
				wantErr = err
			}
			break
		}
		want = append(want, rec)
	}
	caps := DefaultCaps()
	p := newCSVParser(bytes.NewReader(data), comma, &caps)
	for {
		rec, err := p.read()
		if err != nil {
			if err != io.EOF {
				gotErr = err
			}
			break
		}
		got = append(got, slices.Clone(rec))
	}
	return want, got, wantErr, gotErr
}

func TestCSVParser(t *testing.T) {
	for _, in := range []string{
		"a,b\nc,d\n", "a,b\r\nc,d", "\n\na,\"b\nc\"\r\n\r\nd\n", `a,"b""c",""` + "\n", "a,\"b\"x\n",
		"a,b\"c\n", "a,\"b\n", "\"a\"\r", "a\rb,c\r\n", ",\n,,\n", "\"\"\n", "x,\"a\r\nb\"\n",
	} {
		want, got, werr, gerr := parseBoth([]byte(in), ',')
		if (werr == nil) != (gerr == nil) || werr == nil && !equalRecords(want, got) {
			t.Errorf("%q: encoding/csv %q (%v), csvParser %q (%v)", in, want, werr, got, gerr)
		}
	}
}

func equalRecords(a, b [][]string) bool {
	return slices.EqualFunc(a, b, func(x, y []string) bool { return slices.Equal(x, y) })
}

// FuzzCSVParser holds csvParser to encoding/csv's results.
func FuzzCSVParser(f *testing.F) {
	addSeeds(f, ".csv")
	f.Add([]byte("a;\"b\n\"\"c\";d\r\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, comma := range []byte{',', ';'} {
			want, got, werr, gerr := parseBoth(data, comma)
			if (werr == nil) != (gerr == nil) {
				t.Fatalf("errors differ: encoding/csv %v, csvParser %v", werr, gerr)
			}
			if werr == nil && !equalRecords(want, got) {
				t.Fatalf("records differ: encoding/csv %q, csvParser %q", want, got)
			}
		}
	})
}

// TestArenaKeepsStrings takes many strings across arena rollovers and
// checks every one is still intact.
func TestArenaKeepsStrings(t *testing.T) {
	var a arena
	var got []string
	for i := 0; i < 20000; i++ {
		got = append(got, a.str([]byte(itoa(i)+"-value")))
	}
	got = append(got, a.str(bytes.Repeat([]byte("x"), arenaSize+1)))
	for i := 0; i < 20000; i++ {
		if want := itoa(i) + "-value"; got[i] != want {
			t.Fatalf("string %d = %q, want %q", i, got[i], want)
		}
	}
	if len(got[20000]) != arenaSize+1 || a.str(nil) != "" {
		t.Fatal("oversized or empty value mishandled")
	}
}
