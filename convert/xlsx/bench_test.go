package xlsx

import (
	"archive/zip"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/xuri/excelize/v2"

	"usagedrop/convert/xlsx/internal/xlsxgen"
)

var benchSizes = []int{10_000, 100_000}

// benchFile generates a workbook of n rows once per benchmark and returns
// its path and the inflated size of its sheet.
func benchFile(b *testing.B, n int) (string, int64) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "usage-"+strconv.Itoa(n)+".xlsx")
	if err := xlsxgen.Write(path, n); err != nil {
		b.Fatal(err)
	}
	zr, err := zip.OpenReader(path)
	if err != nil {
		b.Fatal(err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if f.Name == "xl/worksheets/sheet1.xml" {
			return path, int64(f.UncompressedSize64)
		}
	}
	b.Fatal("no sheet1.xml")
	return "", 0
}

func BenchmarkRows(b *testing.B) {
	benchEach(b, countRows)
}

// benchEach runs read over the generated workbook of each size, which must
// give its header and rows.
func benchEach(b *testing.B, read func(b *testing.B, path string) int) {
	for _, n := range benchSizes {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			path, xmlSize := benchFile(b, n)
			b.SetBytes(xmlSize)
			b.ResetTimer()
			for b.Loop() {
				if got := read(b, path); got != n+1 {
					b.Fatalf("%d rows, want %d", got, n+1)
				}
			}
			b.ReportMetric(float64(n+1)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

func countRows(b *testing.B, path string) int {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	wb, err := Open(f, st.Size())
	if err != nil {
		b.Fatal(err)
	}
	rs, err := wb.Rows(context.Background(), "Sheet1")
	if err != nil {
		b.Fatal(err)
	}
	defer rs.Close()
	n := 0
	for rs.Next() {
		n++
	}
	if err := rs.Err(); err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkExcelizeRows is the same work through excelize's row
// iterator, raw values, for comparison.
func BenchmarkExcelizeRows(b *testing.B) {
	benchEach(b, func(b *testing.B, path string) int {
		f, err := excelize.OpenFile(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		rows, err := f.Rows("Sheet1")
		if err != nil {
			b.Fatal(err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			if _, err := rows.Columns(excelize.Options{RawCellValue: true}); err != nil {
				b.Fatal(err)
			}
			n++
		}
		return n
	})
}
