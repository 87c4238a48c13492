package manpage

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseHelp(t *testing.T) {
	const help = `usagedrop imports usage files dropped into folders into Zuora, exactly once.

Usage:
  usagedrop run [-config FILE]               run the daemon
  usagedrop check [-o OUT.csv] FILE...
                                             convert and validate files offline
  usagedrop status [-source NAME]            one line per dropped file
  usagedrop status NAME|ID                   one drop and its history
  usagedrop config check FILE                every problem of a config at once
  usagedrop version

Run "usagedrop COMMAND -h" for a command's flags.
`
	p := ParseHelp("usagedrop", help)
	if p.Summary != "usagedrop imports usage files dropped into folders into Zuora, exactly once." {
		t.Errorf("summary %q", p.Summary)
	}
	want := []Command{
		{Name: "run", Usages: []string{"usagedrop run [-config FILE]"}, About: []string{"run the daemon"}},
		{Name: "check", Usages: []string{"usagedrop check [-o OUT.csv] FILE..."}, About: []string{"convert and validate files offline"}},
		{Name: "status", Usages: []string{"usagedrop status [-source NAME]", "usagedrop status NAME|ID"},
			About: []string{"one line per dropped file", "one drop and its history"}},
		{Name: "config check", Usages: []string{"usagedrop config check FILE"}, About: []string{"every problem of a config at once"}},
		{Name: "version", Usages: []string{"usagedrop version"}},
	}
	if !reflect.DeepEqual(p.Commands, want) {
		t.Errorf("commands:\n got %#v\nwant %#v", p.Commands, want)
	}
	if !reflect.DeepEqual(p.Text, []string{`Run "usagedrop COMMAND -h" for a command's flags.`}) {
		t.Errorf("text %q", p.Text)
	}
}

// TestParseFlags reads what the flag package itself prints, so a change
// in its layout shows here.
func TestParseFlags(t *testing.T) {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.String("format", "csv", "csv or jsonl")
	fs.Duration("since", 24*time.Hour, "drops finished this long ago or later")
	fs.Bool("yes", false, "really forget it")
	fs.Bool("v", false, "verbose")
	fs.String("o", "", "write to this file\ninstead of standard output")
	var out bytes.Buffer
	fs.SetOutput(&out)
	fs.Usage = func() {
		out.WriteString("Exports the ledger.\n\n")
		fs.PrintDefaults()
	}
	fs.Usage()

	got := ParseFlags(out.String())
	want := Help{
		Text: []string{"Exports the ledger."},
		Flags: []Flag{
			{Name: "format", Arg: "string", Usage: `csv or jsonl (default "csv")`},
			{Name: "o", Arg: "string", Usage: "write to this file instead of standard output"},
			{Name: "since", Arg: "duration", Usage: "drops finished this long ago or later (default 24h0m0s)"},
			{Name: "v", Usage: "verbose"},
			{Name: "yes", Usage: "really forget it"},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("from\n%s\n got %#v\nwant %#v", out.String(), got, want)
	}
}

func TestWriteEscapes(t *testing.T) {
	p := Page{
		Name: "usagedrop", Version: "v1.2.3", Date: "2026-12-01",
		Summary: "usagedrop imports usage files.",
		Text:    []string{".starts with a dot", "'and a quote", `a \ backslash`, "", "  indented → kept"},
		Commands: []Command{{
			Name: "check", Usages: []string{"usagedrop check [-o OUT.csv] FILE..."},
			About: []string{"convert — and validate"},
			Help:  Help{Flags: []Flag{{Name: "date-format", Arg: "string", Usage: `like "DD/MM/YYYY"`}}},
		}},
		Sections: []Section{{Title: "Files", Items: []Item{{Term: "/etc/usagedrop/config.yaml", Text: "the config"}}}},
	}
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	roff := b.String()
	for _, want := range []string{
		`.TH "USAGEDROP" 1 "2026-12-01" "usagedrop v1.2.3" "User Commands"`,
		"\n\\&.starts with a dot\n", "\n\\&'and a quote\n", `a \e backslash`,
		`\[u2192]`, `\[u2014]`, `\fB\-date\-format\fR \fIstring\fR`, `\fBusagedrop check\fR [\-o OUT.csv] FILE...`,
		".SH \"FILES\"\n.TP\n/etc/usagedrop/config.yaml\n",
	} {
		if !strings.Contains(roff, want) {
			t.Errorf("page lacks %q:\n%s", want, roff)
		}
	}
	for i, line := range strings.Split(roff, "\n") {
		for _, r := range line {
			if r > 0x7e {
				t.Errorf("line %d holds %q: groff would need an input encoding", i+1, r)
			}
		}
	}
	text := render(t, roff)
	for _, want := range []string{".starts with a dot", "'and a quote", `a \ backslash`, "indented → kept", "convert — and validate", "-date-format string"} {
		if !strings.Contains(text, want) {
			t.Errorf("rendered page lacks %q:\n%s", want, text)
		}
	}
}

// TestRealHelp builds usagedrop and writes its page: every command its
// help lists gets a section, every flag its -h prints is described, and
// groff renders the page without a warning.
func TestRealHelp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds usagedrop")
	}
	bin := filepath.Join(t.TempDir(), "usagedrop")
	build := exec.Command("go", "build", "-o", bin, "usagedrop")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	p, err := Read(context.Background(), "usagedrop", bin)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	roff := b.String()

	help, err := exec.Command(bin, "help").Output()
	if err != nil {
		t.Fatal(err)
	}
	commands := 0
	for _, line := range strings.Split(string(help), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "usagedrop" || !strings.HasPrefix(line, " ") {
			continue
		}
		commands++
		if !strings.Contains(roff, `.SS "usagedrop `+option(f[1])) {
			t.Errorf("no section for %q", f[1])
		}
		out, err := exec.Command(bin, f[1], "-h").CombinedOutput()
		if err != nil {
			t.Errorf("usagedrop %s -h: %v", f[1], err)
		}
		for _, fl := range strings.Split(string(out), "\n") {
			if name, ok := strings.CutPrefix(fl, "  -"); ok {
				name = strings.Fields(name)[0]
				if !strings.Contains(roff, `\fB\-`+option(name)+`\fR`) {
					t.Errorf("usagedrop %s -%s is not in the page", f[1], name)
				}
			}
		}
	}
	if commands < 5 {
		t.Errorf("only %d commands found in the help:\n%s", commands, help)
	}
	if p.Version == "" {
		t.Error("no version read from usagedrop version")
	}
	text := render(t, roff)
	if !strings.Contains(text, "usagedrop check [-config FILE]") {
		t.Errorf("rendered page lacks check's synopsis:\n%s", text)
	}
}

// render runs groff with every warning on; any warning fails the test.
func render(t *testing.T, roff string) string {
	t.Helper()
	if _, err := exec.LookPath("groff"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("groff not installed (apt-get install groff-base)")
		}
		t.Skip("groff not installed")
	}
	cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-rLL=300n", "-rHY=0", "-P-cbou")
	cmd.Stdin = strings.NewReader(roff)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("groff: %v\n%s", err, stderr.String())
	}
	return out.String()
}
