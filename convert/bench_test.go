package convert

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// benchCSV writes n rows shaped like partner-template.csv.
func benchCSV(b *testing.B, n int) (string, int64) {
	b.Helper()
	p := filepath.Join(b.TempDir(), "bench.csv")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	w := io.Writer(f)
	fmt.Fprint(w, tmplHeader)
	descs := []string{"Line one", "\"Overage, March\"", "Zürich DC", "東京 region", "plain"}
	for i := 0; i < n; i++ {
		fmt.Fprintf(w, "A%08d,API Calls,%d.25,03/%02d/2026,03/%02d/2026,A-S%08d,,%s\n",
			rng.IntN(100), rng.IntN(1000), 1+rng.IntN(13), 14+rng.IntN(14), rng.IntN(100), descs[i%len(descs)])
	}
	st, _ := f.Stat()
	f.Close()
	return p, st.Size()
}

func BenchmarkWriteTemplateCSV(b *testing.B) {
	const rows = 100000
	p, size := benchCSV(b, rows)
	f, err := os.Open(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		sum, err := WriteTemplate(context.Background(), "bench.csv", f, size, Options{}, Template{}, io.Discard)
		if err != nil || sum.Rejected() || sum.Records != rows {
			b.Fatalf("err %v, %d records, problems %+v", err, sum.Records, sum.Problems)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
