//go:build unix

// Command xlsxbench measures the xlsx reader on one big workbook: rows/s,
// MB/s of sheet XML and peak RSS. Generate the workbook in one run and read
// it in another, so that the peak RSS is the reader's alone:
//
//	go run ./convert/xlsx/internal/xlsxbench -gen -rows 1000000 /tmp/1m.xlsx
//	go run ./convert/xlsx/internal/xlsxbench /tmp/1m.xlsx
//
// -shared generates the worst case for memory instead: every row with two
// unique shared strings.
package main

import (
	"archive/zip"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"usagedrop/convert/xlsx"
	"usagedrop/convert/xlsx/internal/xlsxgen"
)

func main() {
	gen := flag.Bool("gen", false, "generate the workbook instead of reading it")
	shared := flag.Bool("shared", false, "with -gen: all strings shared, two unique per row (the worst case for memory)")
	rows := flag.Int("rows", 1_000_000, "data rows to generate")
	decode := flag.Bool("decode", false, "also turn every number into a Decimal and every date into a Time, as a converter does")
	cpu := flag.String("cpuprofile", "", "write a CPU profile here")
	peer := flag.Bool("xlsx2csv", false, "then time xlsx2csv on the same file, for comparison")
	floor := flag.Bool("inflate", false, "only inflate the sheets, to measure the floor")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: xlsxbench [-gen -rows N] [-decode] file.xlsx")
		os.Exit(2)
	}
	path := flag.Arg(0)
	if *gen {
		write := xlsxgen.Write
		if *shared {
			write = xlsxgen.WriteShared
		}
		if err := write(path, *rows); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if *cpu != "" {
		f, err := os.Create(*cpu)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if *floor {
		if err := inflate(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if err := read(path, *decode); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *peer {
		if err := xlsx2csv(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

// inflate times inflating the sheets alone: the floor for any reader.
func inflate(path string) error {
	start := time.Now()
	zr, err := zip.OpenReader(path)
	if err != nil {
		return err
	}
	defer zr.Close()
	var n int64
	for _, f := range zr.File {
		if !strings.HasPrefix(f.Name, "xl/worksheets/") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return err
		}
		m, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
		n += m
	}
	fmt.Printf("inflated %.1f MB of sheet XML in %.2fs\n", float64(n)/1e6, time.Since(start).Seconds())
	return nil
}

// xlsx2csv times Debian's xlsx2csv converting the first sheet to nowhere.
func xlsx2csv(path string) error {
	cmd := exec.Command("xlsx2csv", path, os.DevNull)
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("xlsx2csv: %w", err)
	}
	elapsed := time.Since(start)
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	fmt.Printf("xlsx2csv: %.2fs (CPU %.2fs), peak RSS %.1f MB\n", elapsed.Seconds(),
		time.Duration(ru.Utime.Nano()+ru.Stime.Nano()).Seconds(), float64(ru.Maxrss)/1024)
	return nil
}

func read(path string, decode bool) error {
	start := time.Now()
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	wb, err := xlsx.Open(f, st.Size())
	if err != nil {
		return err
	}
	sheet := wb.Sheets()[0].Name
	rs, err := wb.Rows(context.Background(), sheet)
	if err != nil {
		return err
	}
	defer rs.Close()
	n, cells := 0, 0
	for rs.Next() {
		n++
		for _, c := range rs.Row().Cells {
			cells++
			if decode && c.Kind == xlsx.Number {
				if c.DateStyle {
					_, err = c.Time(wb.Date1904())
				} else {
					_, err = c.Decimal()
				}
				if err != nil {
					return err
				}
			}
		}
	}
	if err := rs.Err(); err != nil {
		return err
	}
	elapsed := time.Since(start)
	xmlSize, err := sheetSize(path)
	if err != nil {
		return err
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("file %s: %.1f MB, sheet XML %.1f MB\n", path, float64(st.Size())/1e6, float64(xmlSize)/1e6)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	fmt.Printf("rows %d cells %d in %.2fs (CPU %.2fs): %.0f rows/s, %.1f MB/s of XML, peak RSS %.1f MB\n",
		n, cells, elapsed.Seconds(), cpu.Seconds(), float64(n)/elapsed.Seconds(), float64(xmlSize)/1e6/elapsed.Seconds(), float64(ru.Maxrss)/1024)
	return nil
}

func sheetSize(path string) (int64, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return 0, err
	}
	defer zr.Close()
	var n int64
	for _, f := range zr.File {
		if strings.HasPrefix(f.Name, "xl/worksheets/") {
			n += int64(f.UncompressedSize64)
		}
	}
	return n, nil
}
