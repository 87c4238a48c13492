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
