package xlsx

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// bigSheet is a sheet of n rows of a few cells, as XML.
func bigSheet(n int) string {
	var b strings.Builder
	for r := 1; r <= n; r++ {
		s := itoa(r)
		b.WriteString(`<row r="` + s + `"><c r="A` + s + `" t="inlineStr"><is><t>A-` + s + `</t></is></c><c r="B` + s + `"><v>` + s + `.25</v></c><c r="C` + s + `" s="1"><v>46086</v></c></row>`)
	}
	return sheetXML(b.String())
}

func TestDamagedWorkbooks(t *testing.T) {
	good := rawWorkbook{sheets: []string{bigSheet(3000)}, styles: stylesXML}.bytes(t)
	for cut := 0; cut < len(good); cut += len(good)/97 + 1 {
		if err := readWhole(good[:cut]); err == nil {
			t.Fatalf("workbook cut at %d of %d bytes read without error", cut, len(good))
		}
	}
	// Damage the compressed sheet but keep the zip's directory intact, so
	// that only inflating or scanning can notice.
	zr, err := zip.NewReader(bytes.NewReader(good), int64(len(good)))
	must(t, err)
	for _, f := range zr.File {
		if !strings.Contains(f.Name, "sheet1") {
			continue
		}
		off, err := f.DataOffset()
		must(t, err)
		for _, at := range []int64{off + 10, off + int64(f.CompressedSize64)/2, off + int64(f.CompressedSize64) - 4} {
			bad := append([]byte(nil), good...)
			for i := at; i < at+4; i++ {
				bad[i] ^= 0x5a
			}
			if err := readWhole(bad); err == nil {
				t.Errorf("sheet damaged at %d read without error", at)
			}
		}
	}
}

func TestLimits(t *testing.T) {
	b := rawWorkbook{sheets: []string{bigSheet(20000)}, sst: sstXML(`<si><t>` + strings.Repeat("s", 5000) + `</t></si>`)}.bytes(t)
	tests := []struct {
		name string
		lim  Limits
		open bool // refused by Open rather than Rows
	}{
		{"sheet over MaxSheet", Limits{MaxSheet: 1 << 20}, false},
		{"part over MaxPart", Limits{MaxPart: 4096}, true},
		{"absurd ratio", Limits{MaxRatio: 3, RatioFloor: 1 << 16}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wb, err := OpenLimits(bytes.NewReader(b), int64(len(b)), tt.lim)
			if tt.open {
				if !errors.Is(err, ErrTooLarge) {
					t.Fatalf("Open = %v, want ErrTooLarge", err)
				}
				return
			}
			must(t, err)
			if _, err := readRows(wb, "Sheet1"); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Rows = %v, want ErrTooLarge", err)
			}
		})
	}
	if err := readWhole(b); err != nil {
		t.Fatalf("within the default limits: %v", err)
	}
}

// TestLyingSizes: a part that declares a small size but inflates to much
// more is stopped while inflating.
func TestLyingSizes(t *testing.T) {
	body := sheetXML(strings.Repeat(`<row><c><v>1</v></c></row>`, 100000))
	var comp bytes.Buffer
	fw, _ := flate.NewWriter(&comp, flate.BestCompression)
	fw.Write([]byte(body))
	fw.Close()
	good := rawWorkbook{sheets: []string{sheetXML("")}}.bytes(t)
	zr, err := zip.NewReader(bytes.NewReader(good), int64(len(good)))
	must(t, err)
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, f := range zr.File {
		if f.Name == "xl/worksheets/sheet1.xml" {
			w, err := zw.CreateRaw(&zip.FileHeader{Name: f.Name, Method: zip.Deflate, CompressedSize64: uint64(comp.Len()), UncompressedSize64: 100})
			must(t, err)
			w.Write(comp.Bytes())
			continue
		}
		must(t, zw.Copy(f))
	}
	must(t, zw.Close())
	wb := openBytes(t, out.Bytes())
	if _, err := readRows(wb, "Sheet1"); err == nil {
		t.Fatal("a part inflating past its declared size read without error")
	}
}

func TestCancel(t *testing.T) {
	b := rawWorkbook{sheets: []string{bigSheet(30000)}, styles: stylesXML}.bytes(t)
	wb := openBytes(t, b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rs, err := wb.Rows(ctx, "Sheet1")
	must(t, err)
	defer rs.Close()
	n := 0
	deadline := time.Now().Add(10 * time.Second)
	for rs.Next() {
		if n++; n == 10 {
			cancel()
		}
		if time.Now().After(deadline) {
			t.Fatal("rows go on after cancel")
		}
	}
	if n != 10 {
		t.Errorf("%d rows after cancelling at the 10th", n-10)
	}
	if !errors.Is(rs.Err(), context.Canceled) {
		t.Fatalf("after %d rows Err() = %v, want context.Canceled", n, rs.Err())
	}
}
