package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"usagedrop/internal/safetext"
	"usagedrop/ledger"
	"usagedrop/pipeline"
)

// runRetry has a drop tried again: one still being worked on (waiting
// for Zuora or a source, or backing off) is tried now; a rejected or
// failed one is sent again from failed/ as a new generation, with new
// idempotency keys, and ends in imported/ or failed/ again with fresh
// reports. An imported drop or a duplicate is refused with the reason.
func runRetry(ctx context.Context, args []string, stdout io.Writer) error {
	flags := flag.NewFlagSet("retry", flag.ContinueOnError)
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), "Usage of retry: usagedrop retry [-config FILE] ID\n\n"+
			"A drop still being worked on is tried now; a rejected or failed one is sent again from failed/\n"+
			"(after a fix in the config or in Zuora). `usagedrop status` shows each drop's ID.\n\n")
		flags.PrintDefaults()
	}
	cfgPath := flags.String("config", "", "config file (default: the embedded default)")
	rest, err := parseArgs(flags, args, stdout)
	if err != nil || len(rest) != 1 {
		return cmp.Or(err, errUsage)
	}
	id := rest[0]
	cfg, err := loadConfig(*cfgPath, nil)
	if err != nil {
		return err
	}
	led, d, err := openLedger(cfg)
	if err != nil {
		return err
	}
	var msg string
	if led != nil {
		defer led.Close()
		var before, after *ledger.Entry
		if before, err = led.Get(id); err == nil {
			after, err = pipeline.Retry(led, id, sourceTypes(cfg)(before.Source))
		}
		if err == nil {
			msg = retryMessage(before, after, false)
		}
	} else {
		var res opResult
		err = d.call(ctx, http.MethodPost, "/v1/drops/"+url.PathEscape(id)+"/retry", nil, &res)
		msg = res.Message
	}
	if why, ok := reason(err); ok {
		return fmt.Errorf("drop %s was not sent again: %s", safetext.Name(id), why)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, msg)
	return nil
}

// retryMessage says what retry did to a drop, before and after it.
// running says a daemon has it in hand now.
func retryMessage(before, after *ledger.Entry, running bool) string {
	name := fmt.Sprintf("drop %s (%s)", after.ID, safetext.Name(after.Name))
	when := "as soon as the daemon starts (none is running)"
	if running {
		when = "now"
	}
	if !before.Finished {
		return fmt.Sprintf("%s, %s, will be tried %s", name, describe(before), when)
	}
	return fmt.Sprintf("%s, %s, will be sent again %s from %s, as a new try with new idempotency keys; "+
		"it ends in imported/ or failed/ with new reports (the old ones stay in failed/)",
		name, describe(before), when, safetext.Name(after.Key))
}
