package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"usagedrop/internal/safetext"
	"usagedrop/ledger"
)

// errNotConfirmed ends `forget` without -yes: it said what it would do.
var errNotConfirmed = errors.New("nothing was changed: add -yes to forget it")

// forgetNote is the event forgetting leaves in a drop's history.
const forgetNote = "forgotten at an operator's request (usagedrop forget): the same bytes may be dropped again, and will then be imported again"

// runForget lets the bytes of an imported drop be dropped again: today a
// re-drop of them is a Duplicate, and the report asks the user to edit
// the file. Without -yes it only says what it would do, and exits 1.
// The drop stays in the ledger, the forgetting in its history.
func runForget(ctx context.Context, args []string, stdout io.Writer) error {
	flags := flag.NewFlagSet("forget", flag.ContinueOnError)
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), "Usage of forget: usagedrop forget [-config FILE] [-yes] ID|SHA256\n\n"+
			"Lets the same bytes as an imported drop be dropped again and imported again.\n"+
			"SHA256 may be the first 12 digits `usagedrop status` shows.\n\n")
		flags.PrintDefaults()
	}
	cfgPath := flags.String("config", "", "config file (default: the embedded default)")
	yes := flags.Bool("yes", false, "forget it; without -yes, only say what would be done")
	rest, err := parseArgs(flags, args, stdout)
	if err != nil || len(rest) != 1 {
		return cmp.Or(err, errUsage)
	}
	ref := rest[0]
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
		var e *ledger.Entry
		if e, err = ledger.Resolve(led, ref); err == nil {
			if *yes {
				if e, err = led.Forget(e.ID, forgetNote); err == nil {
					msg = forgotMessage(e)
				}
			} else {
				msg, err = forgetPlan(led, e)
			}
		}
	} else {
		method := http.MethodGet
		if *yes {
			method = http.MethodPost
		}
		var res opResult
		err = d.call(ctx, method, "/v1/drops/"+url.PathEscape(ref)+"/forget", nil, &res)
		msg = res.Message
	}
	if why, ok := reason(err); ok {
		return fmt.Errorf("%s was not forgotten: %s", safetext.Name(ref), why)
	}
	if errors.Is(err, ledger.ErrNotFound) {
		return fmt.Errorf("no drop has the id or sha256 %q", safetext.Name(ref))
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, msg)
	if !*yes {
		return errNotConfirmed
	}
	return nil
}

// forgetPlan says what forgetting e would do, or why it cannot.
func forgetPlan(st ledger.Store, e *ledger.Entry) (string, error) {
	if !e.Forgotten.IsZero() {
		return fmt.Sprintf("drop %s (%s) was already forgotten on %s", e.ID, safetext.Name(e.Name), when(e.Forgotten)), nil
	}
	if err := st.CanForget(e.ID); err != nil {
		return "", err
	}
	what := "it imported"
	if ids := e.ImportIDs(); len(ids) > 0 {
		what += " (import " + strings.Join(ids, ", ") + ")"
	}
	return fmt.Sprintf("would forget drop %s (%s, %s, sha256 %s): the same bytes could then be dropped again and would be "+
		"imported again in full, under new idempotency keys; what %s stays in Zuora. The drop stays in the ledger, "+
		"with this in its history", e.ID, safetext.Name(e.Name), describe(e), e.SHA256, what), nil
}

// forgotMessage says what forget did.
func forgotMessage(e *ledger.Entry) string {
	return fmt.Sprintf("forgot drop %s (%s): the same bytes (sha256 %s) may be dropped again, and will then be imported again",
		e.ID, safetext.Name(e.Name), e.SHA256)
}
