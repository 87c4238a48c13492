// Command benchgen writes usage files for scripts/bench.sh: a CSV or an xlsx
// of n rows with friendly headers, date cells, decimal quantities and
// descriptions that need quoting, streamed so that 1M rows take no memory.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"time"

	"github.com/xuri/excelize/v2"
)

var descs = []string{"Line one", "Overage, March", "Zürich DC", "東京 region", "plain", `Batch "nightly" run`}

func main() {
	rows := flag.Int("rows", 10000, "number of usage rows")
	format := flag.String("format", "csv", "csv or xlsx")
	out := flag.String("o", "", "output file")
	flag.Parse()
	if *out == "" {
		log.Fatal("benchgen: -o is required")
	}
	var err error
	switch *format {
	case "csv":
		err = writeCSV(*out, *rows)
	case "xlsx":
		err = writeXLSX(*out, *rows)
	default:
		err = fmt.Errorf("unknown format %q", *format)
	}
	if err != nil {
		log.Fatalf("benchgen: %v", err)
	}
}

// row returns the values of row i, the same for both formats.
func row(rng *rand.Rand, i int) (acct, uom string, qty float64, start, end time.Time, sub, desc string) {
	start = time.Date(2026, 3, 1+rng.IntN(28), 0, 0, 0, 0, time.UTC)
	return fmt.Sprintf("A%08d", rng.IntN(100000)), []string{"API Calls", "GB", "Seats", "Minutes"}[i%4],
		float64(rng.IntN(100000)) / 8, start, start.AddDate(0, 0, rng.IntN(7)),
		fmt.Sprintf("A-S%08d", rng.IntN(100000)), descs[i%len(descs)]
}

func writeCSV(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintln(w, "Account Number,Unit of Measure,Quantity,Start Date,End Date,Subscription,Charge,Description")
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < n; i++ {
		acct, uom, qty, start, end, sub, desc := row(rng, i)
		if desc[0] == 'O' || desc[0] == 'B' {
			desc = `"` + quoteInner(desc) + `"`
		}
		fmt.Fprintf(w, "%s,%s,%g,%s,%s,%s,,%s\n", acct, uom, qty, start.Format("01/02/2006"), end.Format("01/02/2006"), sub, desc)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

func quoteInner(s string) string {
	out := make([]byte, 0, len(s)+4)
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			out = append(out, '"')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func writeXLSX(path string, n int) error {
	f := excelize.NewFile()
	defer f.Close()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		return err
	}
	dateStyle, err := f.NewStyle(&excelize.Style{NumFmt: 14})
	if err != nil {
		return err
	}
	head := []any{"Account Number", "Unit of Measure", "Quantity", "Start Date", "End Date", "Subscription", "Charge", "Description"}
	if err := sw.SetRow("A1", head); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < n; i++ {
		acct, uom, qty, start, end, sub, desc := row(rng, i)
		cells := []any{acct, uom, qty,
			excelize.Cell{StyleID: dateStyle, Value: start},
			excelize.Cell{StyleID: dateStyle, Value: end},
			sub, nil, desc}
		ref, _ := excelize.CoordinatesToCellName(1, i+2)
		if err := sw.SetRow(ref, cells); err != nil {
			return err
		}
	}
	if err := sw.Flush(); err != nil {
		return err
	}
	return f.SaveAs(path)
}
