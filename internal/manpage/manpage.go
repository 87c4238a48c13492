// Package manpage writes usagedrop(1) from the CLI's own help: the
// binary's `help` and each command's `-h`, so a new command or flag lands
// in the page with no edit here. The page is plain roff with the man
// macros, written by hand: the help is small and regular (a usage block,
// then Go's flag.PrintDefaults per command), and a formatter of a hundred
// lines is easier to keep right than a dependency.
package manpage

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// Page is one manual page: the program's help, each command's, and the
// sections the help cannot know (FILES, SEE ALSO).
type Page struct {
	Name     string // the program, "usagedrop"
	Version  string // shown in the page's footer
	Date     string // YYYY-MM-DD, the footer's date
	Summary  string // the help's first line, the NAME section
	Text     []string
	Commands []Command
	Sections []Section // after COMMANDS
}

// Command is one command of the program, as its help shows it.
type Command struct {
	Name   string   // "run", or "config check" for a subcommand
	Usages []string // its synopsis lines in the program's help
	About  []string // what the program's help says it does, one entry per line
	Help   Help     // what its -h printed
}

// Help is a command's -h output: text, then flags.
type Help struct {
	Text  []string
	Flags []Flag
}

// Flag is one flag as flag.PrintDefaults shows it.
type Flag struct {
	Name  string // without the dash
	Arg   string // "string", "duration", ...; empty for a boolean
	Usage string
}

// Section is a titled list of terms and their descriptions.
type Section struct {
	Title string
	Items []Item
}

// Item is a term and what it means.
type Item struct {
	Term, Text string
}

// Read runs bin's help, version and each command's -h and returns the page
// of the program name (bin may be called anything). A
// command whose -h fails is an error: --help exits 0 everywhere.
func Read(ctx context.Context, name, bin string) (Page, error) {
	help, err := output(ctx, bin, "help")
	if err != nil {
		return Page{}, err
	}
	p := ParseHelp(name, help)
	version, err := output(ctx, bin, "version")
	if err != nil {
		return Page{}, err
	}
	// "usagedrop v1.2.3 (rev, go1.26.8)": the footer has room for v1.2.3.
	if f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(version), p.Name)); len(f) > 0 {
		p.Version = f[0]
	}
	for i, c := range p.Commands {
		args := append(strings.Fields(c.Name), "-h")
		out, err := output(ctx, bin, args...)
		if err != nil {
			return Page{}, err
		}
		p.Commands[i].Help = ParseFlags(out)
	}
	return p, nil
}

func output(ctx context.Context, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s", bin, strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// A usage line: "  usagedrop config check FILE   what it does". The command
// is the lowercase words after the program's name; what it does follows a
// gap of three spaces or more.
var usageLine = regexp.MustCompile(`^\s+(\S+)((?: [a-z][a-z0-9-]*)+)(.*)$`)

var gap = regexp.MustCompile(`\s{3,}`)

// ParseHelp reads the help of the program name: its first line, then usage
// lines ("  usagedrop CMD ..."), each with the indented lines under it; any
// other line is description.
func ParseHelp(name, help string) Page {
	p := Page{Name: name}
	var cur *Command
	sc := bufio.NewScanner(strings.NewReader(help))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t")
		if p.Summary == "" && line != "" {
			p.Summary = line
			continue
		}
		if m := usageLine.FindStringSubmatch(line); m != nil && m[1] == p.Name {
			name := strings.TrimSpace(m[2])
			rest := m[3]
			synopsis, about := rest, ""
			if loc := gap.FindStringIndex(rest); loc != nil {
				synopsis, about = rest[:loc[0]], rest[loc[1]:]
			}
			cur = p.command(name)
			cur.Usages = append(cur.Usages, strings.TrimSpace(p.Name+" "+name+synopsis))
			if about != "" {
				cur.About = append(cur.About, about)
			}
			continue
		}
		if cur != nil && strings.HasPrefix(line, "   ") {
			cur.About = append(cur.About, strings.TrimSpace(line))
			continue
		}
		cur = nil
		if line == "Usage:" || (line == "" && len(p.Text) == 0) {
			continue
		}
		p.Text = append(p.Text, line)
	}
	return p
}

// command returns the named command, added if new: a command with two
// usage lines ("status", "status NAME|ID") is one command.
func (p *Page) command(name string) *Command {
	for i := range p.Commands {
		if p.Commands[i].Name == name {
			return &p.Commands[i]
		}
	}
	p.Commands = append(p.Commands, Command{Name: name})
	return &p.Commands[len(p.Commands)-1]
}

// flagLine is flag.PrintDefaults' first line of a flag: "  -name type",
// or "  -x\tusage" for a one-letter boolean.
var flagLine = regexp.MustCompile(`^  -(\S+)(?: (\S+))?(?:\t(.*))?$`)

// ParseFlags reads a command's -h output.
func ParseFlags(out string) Help {
	var h Help
	var cur *Flag
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t")
		switch m := flagLine.FindStringSubmatch(line); {
		case strings.HasPrefix(line, "Usage of ") && strings.HasSuffix(line, ":"):
		case m != nil:
			h.Flags = append(h.Flags, Flag{Name: m[1], Arg: m[2], Usage: m[3]})
			cur = &h.Flags[len(h.Flags)-1]
		case cur != nil && strings.HasPrefix(line, "    \t"):
			cur.Usage = strings.TrimSpace(cur.Usage + " " + strings.TrimSpace(line))
		default:
			cur = nil
			if line != "" || len(h.Text) > 0 {
				h.Text = append(h.Text, line)
			}
		}
	}
	for len(h.Text) > 0 && h.Text[len(h.Text)-1] == "" {
		h.Text = h.Text[:len(h.Text)-1]
	}
	return h
}

// Write writes the page as roff (man macros).
func (p Page) Write(w io.Writer) error {
	date := p.Date
	if date == "" {
		date = time.Now().UTC().Format(time.DateOnly)
	}
	b := &bytes.Buffer{}
	fmt.Fprintf(b, ".TH %s 1 %s %s \"User Commands\"\n", quote(strings.ToUpper(p.Name)), quote(date), quote(p.Name+" "+p.Version))
	fmt.Fprintf(b, ".SH NAME\n%s \\- %s\n", text(p.Name), text(strings.TrimSuffix(strings.TrimPrefix(p.Summary, p.Name+" "), ".")))
	b.WriteString(".SH SYNOPSIS\n.nf\n")
	for _, c := range p.Commands {
		for _, u := range c.Usages {
			fmt.Fprintf(b, "%s\n", synopsis(p.Name, c.Name, u))
		}
	}
	b.WriteString(".fi\n")
	if len(p.Text) > 0 {
		b.WriteString(".SH DESCRIPTION\n")
		paragraphs(b, p.Text)
	}
	b.WriteString(".SH COMMANDS\n")
	for _, c := range p.Commands {
		fmt.Fprintf(b, ".SS %s\n", quote(p.Name+" "+c.Name))
		b.WriteString(".nf\n")
		for _, u := range c.Usages {
			fmt.Fprintf(b, "%s\n", synopsis(p.Name, c.Name, u))
		}
		b.WriteString(".fi\n")
		if len(c.About) > 0 {
			fmt.Fprintf(b, ".PP\n%s\n", text(strings.Join(c.About, " ")))
		}
		paragraphs(b, c.Help.Text)
		for _, f := range c.Help.Flags {
			fmt.Fprintf(b, ".TP\n\\fB\\-%s\\fR", option(f.Name))
			if f.Arg != "" {
				fmt.Fprintf(b, " \\fI%s\\fR", text(f.Arg))
			}
			fmt.Fprintf(b, "\n%s\n", text(f.Usage))
		}
	}
	for _, s := range p.Sections {
		fmt.Fprintf(b, ".SH %s\n", quote(strings.ToUpper(s.Title)))
		for _, it := range s.Items {
			fmt.Fprintf(b, ".TP\n%s\n%s\n", text(it.Term), text(it.Text))
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// paragraphs writes help text: blank lines part paragraphs, indented lines
// keep their layout.
func paragraphs(b *bytes.Buffer, lines []string) {
	if len(lines) == 0 {
		return
	}
	b.WriteString(".PP\n")
	pre := false
	for _, l := range lines {
		indented := strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")
		switch {
		case l == "":
			if pre {
				b.WriteString(".fi\n")
				pre = false
			}
			b.WriteString(".PP\n")
			continue
		case indented && !pre:
			b.WriteString(".nf\n")
			pre = true
		case !indented && pre:
			b.WriteString(".fi\n")
			pre = false
		}
		b.WriteString(text(l) + "\n")
	}
	if pre {
		b.WriteString(".fi\n")
	}
}

// synopsis is a usage line with the program and command in bold.
func synopsis(prog, cmd, usage string) string {
	head := prog + " " + cmd
	return "\\fB" + option(head) + "\\fR" + option(strings.TrimPrefix(usage, head))
}

// text escapes s for roff: backslashes, a control character at the start
// of a line, and anything outside ASCII as a \[uXXXX] glyph, so that groff
// needs no input encoding.
func text(s string) string {
	var b strings.Builder
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		b.WriteString(`\&`)
	}
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\e`)
		case r == '\t':
			b.WriteString("    ")
		case r < 0x20 || r == 0x7f:
			// help text holds none; drop rather than emit a roff control
		case r > 0x7e:
			fmt.Fprintf(&b, `\[u%04X]`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// option is text whose dashes are minus signs, as options must be to be
// copied from the rendered page.
func option(s string) string { return strings.ReplaceAll(text(s), "-", `\-`) }

// quote makes s one macro argument.
func quote(s string) string { return `"` + strings.ReplaceAll(text(s), `"`, `\(dq`) + `"` }
