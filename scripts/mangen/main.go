// Command mangen writes usagedrop(1) from a built usagedrop's own help:
//
//	go run ./scripts/mangen -bin dist/usagedrop -date 2026-12-01 > usagedrop.1
//
// scripts/package.sh runs it; the sections below are what the help cannot
// know: where the package puts things.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"usagedrop/internal/manpage"
)

func main() {
	bin := flag.String("bin", "usagedrop", "the usagedrop binary whose help is read")
	date := flag.String("date", "", "the page's date, YYYY-MM-DD (default: today, UTC)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *bin, *date); err != nil {
		fmt.Fprintln(os.Stderr, "mangen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, bin, date string) error {
	p, err := manpage.Read(ctx, "usagedrop", bin)
	if err != nil {
		return err
	}
	p.Date = date
	p.Sections = packaged()
	return p.Write(os.Stdout)
}

// packaged is where the .deb and .rpm install things (packaging/nfpm.yaml).
func packaged() []manpage.Section {
	return []manpage.Section{
		{Title: "Files", Items: []manpage.Item{
			{Term: "/etc/usagedrop/config.yaml", Text: "The daemon's configuration (a conffile: an upgrade keeps your edits). As installed it is the documented example; fill in the Zuora endpoint and API user and your sources before starting the service."},
			{Term: "/etc/usagedrop/env", Text: "Optional, mode 0600: environment for the service, such as ZUORA_CLIENT_ID and ZUORA_CLIENT_SECRET for ${VAR} in the config."},
			{Term: "/var/lib/usagedrop", Text: "The ledger and the spool (the unit's StateDirectory=), owned by the usagedrop user."},
			{Term: "/usr/lib/systemd/system/usagedrop.service", Text: "The systemd unit: systemctl enable --now usagedrop."},
			{Term: "/usr/lib/sysusers.d/usagedrop.conf", Text: "The usagedrop system user, created by systemd-sysusers."},
			{Term: "/usr/share/doc/usagedrop/README.md", Text: "How it works: drops, states, limits, the Zuora APIs, running it as a service."},
		}},
		{Title: "Environment", Items: []manpage.Item{
			{Term: "USAGEDROP_DEBUG", Text: "When set, the daemon logs at debug level."},
		}},
		{Title: "See also", Items: []manpage.Item{
			{Term: "systemctl(1), systemd.service(5), systemd-sysusers(8)", Text: "Running the daemon as a service."},
		}},
	}
}
