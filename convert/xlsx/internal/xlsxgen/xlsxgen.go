// Package xlsxgen writes usage workbooks of any size for benchmarks: the
// shape finance teams send (account, unit, quantity, dates, subscription,
// charge, description), written by excelize's StreamWriter.
package xlsxgen

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/xuri/excelize/v2"
)

// Write writes a workbook of a header and rows usage rows to path,
// atomically. Every fifth quantity is a formula with its cached value;
// dates carry a date number format.
func Write(path string, rows int) (err error) {
	f := excelize.NewFile()
	defer f.Close()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		return err
	}
	date, err := f.NewStyle(&excelize.Style{NumFmt: 14})
	if err != nil {
		return err
	}
	header := []any{"Account Number", "Unit of Measure", "Quantity", "Start Date", "End Date", "Subscription", "Charge", "Description"}
	if err := sw.SetRow("A1", header); err != nil {
		return err
	}
	uoms := []string{"API Calls", "GB", "Seats", "Minutes"}
	for i := 1; i <= rows; i++ {
		var qty any = float64(i%1000) * 0.125
		if i%5 == 0 {
			qty = excelize.Cell{Formula: fmt.Sprintf("%d*0.125", i%1000), Value: float64(i%1000) * 0.125}
		}
		day := 46082 + i%28
		row := []any{
			fmt.Sprintf("A%08d", i%50000), uoms[i%len(uoms)], qty,
			excelize.Cell{StyleID: date, Value: day}, excelize.Cell{StyleID: date, Value: day + 1},
			fmt.Sprintf("A-S%08d", i%20000), fmt.Sprintf("C-%08d", i%3000), "Monthly usage",
		}
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := sw.SetRow(cell, row); err != nil {
			return err
		}
	}
	if err := sw.Flush(); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".xlsxgen-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	if _, err := f.WriteTo(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
