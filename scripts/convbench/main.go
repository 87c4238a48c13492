//go:build unix

// Command convbench converts one usage file to Zuora's template with
// convert.WriteTemplate and reports rows, time and peak RSS, for
// scripts/bench.sh. It is the same code path as `usagedrop check -o`.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"runtime/pprof"
	"syscall"
	"time"

	"usagedrop/convert"
)

func main() {
	in := flag.String("in", "", "usage file to convert")
	out := flag.String("o", os.DevNull, "where to write the template CSV")
	prof := flag.String("cpuprofile", "", "write a CPU profile here")
	pack := flag.String("convert", "", "run convert.Convert into this dir instead, and list the parts")
	flag.Parse()
	if *prof != "" {
		pf, err := os.Create(*prof)
		if err != nil {
			log.Fatalf("convbench: %v", err)
		}
		pprof.StartCPUProfile(pf)
		defer pprof.StopCPUProfile()
	}
	f, err := os.Open(*in)
	if err != nil {
		log.Fatalf("convbench: %v", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		log.Fatalf("convbench: %v", err)
	}
	if *pack != "" {
		convertInto(f, *in, st.Size(), *pack)
		return
	}
	o, err := os.Create(*out)
	if err != nil {
		log.Fatalf("convbench: %v", err)
	}
	w := bufio.NewWriterSize(o, 1<<20)
	start := time.Now()
	sum, err := convert.WriteTemplate(context.Background(), *in, f, st.Size(), convert.Options{}, convert.Template{}, io.Writer(w))
	if err == nil {
		err = w.Flush()
	}
	el := time.Since(start)
	if err != nil {
		log.Fatalf("convbench: %v", err)
	}
	if sum.Rejected() {
		pprof.StopCPUProfile()
		log.Fatalf("convbench: %s rejected: %+v", *in, sum.Problems[0])
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("rows=%d seconds=%.3f rows_per_s=%.0f mb_per_s=%.1f maxrss_kb=%d\n",
		sum.Records, el.Seconds(), float64(sum.Records)/el.Seconds(), float64(st.Size())/1e6/el.Seconds(), ru.Maxrss)
}

// convertInto runs the whole packaging path and reports each part.
func convertInto(f *os.File, name string, size int64, dir string) {
	start := time.Now()
	res, err := convert.Convert(context.Background(), name, "bench0001", f, size, convert.Options{}, convert.Template{}, convert.Limits{}, dir)
	el := time.Since(start)
	if err != nil {
		log.Fatalf("convbench: %v", err)
	}
	if res.Rejected() {
		log.Fatalf("convbench: %s rejected: %+v", name, res.Problems[0])
	}
	for _, p := range res.Parts {
		fmt.Printf("part %d %s size=%d records=%d\n", p.Index, p.Name, p.Size, p.Records)
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("rows=%d parts=%d seconds=%.3f maxrss_kb=%d\n", res.Records, len(res.Parts), el.Seconds(), ru.Maxrss)
}
