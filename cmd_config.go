package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"usagedrop/config"
)

const configUsage = `Usage:
  usagedrop config check FILE

Reads FILE as the daemon would at start and prints "ok" with a one-line
summary, or every problem at once, one per line:
  line N: key: reason (got "value")
Exit status 1 when there are problems. Nothing is contacted: use
"usagedrop test" to reach Zuora and the sources.
`

// runConfig is `usagedrop config check FILE`. It reports whether the
// config has problems; each has been printed.
func runConfig(_ context.Context, args []string, stdout io.Writer) (bad bool, err error) {
	if len(args) == 0 {
		return false, errUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, configUsage)
		return false, errHelp
	case "check":
	default:
		return false, fmt.Errorf("config: unknown command %q (try: usagedrop config check FILE)", args[0])
	}
	fs := flag.NewFlagSet("config check", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), configUsage) }
	files, err := parseArgs(fs, args[1:], stdout)
	if err != nil {
		return false, err
	}
	if len(files) != 1 {
		return false, errUsage
	}
	c, err := loadConfig(files[0], nil)
	if printProblems(stdout, err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	fmt.Fprintf(stdout, "ok: %s\n", c.Summary())
	return false, nil
}

// printProblems prints each problem of a config that does not load, one
// per line, and reports whether err was such a list.
func printProblems(w io.Writer, err error) bool {
	var ve *config.ValidationError
	if !errors.As(err, &ve) {
		return false
	}
	for _, p := range ve.Problems {
		fmt.Fprintln(w, p)
	}
	return true
}
