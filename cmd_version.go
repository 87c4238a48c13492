package main

import (
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// version overrides the version the build info gives, for builds outside
// git (a source tarball): go build -ldflags "-X main.version=1.2.3".
var version string

// buildVersion is what a binary knows of the source it was built from.
type buildVersion struct {
	Version   string // -X main.version, else the module version go stamped from git, else "dev"
	Revision  string // vcs.revision: the commit, empty when built outside git
	Modified  bool   // vcs.modified: the tree had uncommitted changes
	GoVersion string // the toolchain, e.g. go1.26.8
}

// readVersion reads this binary's build info.
func readVersion() buildVersion {
	bi, _ := debug.ReadBuildInfo()
	return versionOf(bi, version)
}

// versionOf is readVersion for a given build info and -X override, apart
// so that every case can be tested without building a binary per case.
func versionOf(bi *debug.BuildInfo, override string) buildVersion {
	v := buildVersion{Version: override}
	if bi == nil {
		if v.Version == "" {
			v.Version = "dev"
		}
		return v
	}
	v.GoVersion = bi.GoVersion
	if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v.Version = bi.Main.Version
	}
	if v.Version == "" {
		v.Version = "dev"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// String is the one line `usagedrop version` prints and the daemon logs:
// "v0.0.0-20261201195330-fa638c2abcde (fa638c2abcde, go1.26.8)", with
// "modified" after a revision built from a tree with uncommitted changes.
func (v buildVersion) String() string {
	var detail []string
	if v.Revision != "" {
		rev := v.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if v.Modified {
			rev += " modified"
		}
		detail = append(detail, rev)
	}
	if v.GoVersion != "" {
		detail = append(detail, v.GoVersion)
	}
	if len(detail) == 0 {
		return v.Version
	}
	return v.Version + " (" + strings.Join(detail, ", ") + ")"
}

// runVersion prints the version line.
func runVersion(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	if _, err := parseArgs(fs, args, stdout); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "usagedrop", readVersion())
	return nil
}
