package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"usagedrop/zuorasim"
)

// runSim serves the Zuora simulator until interrupted.
func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8320", "address to listen on")
	accounts := fs.String("accounts", "", "comma-separated account numbers to accept (default: any)")
	uoms := fs.String("uoms", "", "comma-separated units of measure to accept (default: any)")
	dateFormat := fs.String("date-format", "MM/DD/YYYY", "the API user's date format")
	if rest, err := parseArgs(fs, args, stdout); err != nil || len(rest) > 0 {
		return cmp.Or(err, errUsage)
	}
	log := newLogger(stderr)
	sim := zuorasim.New(zuorasim.Options{
		Accounts: splitList(*accounts), UOMs: splitList(*uoms), DateFormat: *dateFormat, Logger: log,
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	log.Info("zuora simulator listening", "url", "http://"+ln.Addr().String())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
