package convert

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// sniffSize is how much of a text file decides its encoding and delimiter.
const sniffSize = 64 << 10

// delimiters are the ones spreadsheet tools write, in order of preference.
var delimiters = []rune{',', ';', '\t', '|'}

// dialect is how one delimited text file is written.
type dialect struct {
	enc   encoding.Encoding // nil for UTF-8
	name  string            // for messages
	skip  int               // bytes of byte-order mark to skip
	comma rune
}

// streamOpener opens the raw bytes of a text file from the start; it is
// called once per pass.
type streamOpener func() (io.ReadCloser, error)

// sniffEncoding decides the encoding from the byte-order mark, the
// source's override, or, failing both, whether the bytes are UTF-8.
func sniffEncoding(head []byte, override string) (dialect, error) {
	switch {
	case bytes.HasPrefix(head, []byte{0xEF, 0xBB, 0xBF}):
		return dialect{name: "UTF-8", skip: 3}, nil
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE}):
		return dialect{enc: unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM), name: "UTF-16LE", skip: 2}, nil
	case bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
		return dialect{enc: unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM), name: "UTF-16BE", skip: 2}, nil
	}
	switch strings.ToLower(strings.ReplaceAll(override, "_", "-")) {
	case "utf-8", "utf8":
		return dialect{name: "UTF-8"}, nil
	case "utf-16le":
		return dialect{enc: unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM), name: "UTF-16LE"}, nil
	case "utf-16be":
		return dialect{enc: unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM), name: "UTF-16BE"}, nil
	case "windows-1252", "cp1252", "latin1", "iso-8859-1":
		return dialect{enc: charmap.Windows1252, name: "Windows-1252"}, nil
	case "":
	default:
		return dialect{}, reject("encoding %q is not one of utf-8, utf-16le, utf-16be, windows-1252", override)
	}
	if bytes.IndexByte(head, 0) >= 0 {
		return dialect{}, rejectHint("if the source's files are UTF-16 without a byte-order mark, set encoding: utf-16le or utf-16be in the source's settings",
			"the file holds NUL bytes: it is binary, or UTF-16 text without a byte-order mark; save it again as CSV UTF-8")
	}
	if !utf8.Valid(trimPartialRune(head)) {
		return dialect{enc: charmap.Windows1252, name: "Windows-1252"}, nil
	}
	return dialect{name: "UTF-8"}, nil
}

// trimPartialRune drops a multi-byte character cut by the sniff window.
func trimPartialRune(b []byte) []byte {
	for i := 1; i <= 3 && i <= len(b); i++ {
		c := b[len(b)-i]
		if c < 0x80 {
			return b
		}
		if c >= 0xC0 {
			if utf8.FullRune(b[len(b)-i:]) {
				return b
			}
			return b[:len(b)-i]
		}
	}
	return b
}

// decode returns a reader of UTF-8 text from raw bytes in dialect d.
func (d dialect) decode(r io.Reader) io.Reader {
	if d.skip > 0 {
		io.CopyN(io.Discard, r, int64(d.skip))
	}
	if d.enc == nil {
		return r
	}
	return transform.NewReader(r, d.enc.NewDecoder())
}

// sniffDelimiter picks the delimiter under which a header row is
// recognised in the sample; failing that, the one most frequent (outside
// quotes) in the first non-empty line, so the missing-column problem lists
// sensible column names.
func sniffDelimiter(sample string, over map[string]field, bufs *csvBuffers) rune {
	best, bestWidth := rune(0), 0
	// Our own parser, with the caps: a sample of one huge row costs no
	// more than the cap, and a row it cannot parse is refused in the
	// read anyway. One parser serves the four tries.
	p := bufs.parser(nil, 0)
	defer bufs.release(p)
	for _, d := range delimiters {
		p.reset(strings.NewReader(sample), byte(d))
		for i := 0; i < maxHeaderSearch; i++ {
			rec, err := p.read()
			if err != nil {
				break
			}
			if m, ok := mapHeader(rec, over, 0); ok && m.width > bestWidth {
				best, bestWidth = d, m.width
				break
			}
		}
	}
	if best != 0 {
		return best
	}
	line := sample
	for {
		i := strings.IndexAny(line, "\r\n")
		if i < 0 {
			break
		}
		if strings.TrimSpace(line[:i]) != "" {
			line = line[:i]
			break
		}
		line = line[i+1:]
	}
	best, bestN := ',', 0
	for _, d := range delimiters {
		n, quoted := 0, false
		for _, c := range line {
			switch {
			case c == '"':
				quoted = !quoted
			case c == d && !quoted:
				n++
			}
		}
		if n > bestN {
			best, bestN = d, n
		}
	}
	return best
}

// sniffCSV reads the head of a text file and decides its dialect.
func sniffCSV(open streamOpener, override string, over map[string]field, bufs *csvBuffers) (dialect, error) {
	rc, err := open()
	if err != nil {
		return dialect{}, err
	}
	defer rc.Close()
	if bufs.head == nil {
		bufs.head = make([]byte, sniffSize)
	}
	head := bufs.head
	n, err := io.ReadFull(rc, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return dialect{}, err
	}
	head = head[:n]
	d, err := sniffEncoding(head, override)
	if err != nil {
		return d, err
	}
	text := head[min(d.skip, len(head)):]
	if d.enc != nil {
		text, _ = io.ReadAll(d.decode(bytes.NewReader(head)))
	}
	d.comma = sniffDelimiter(string(text), over, bufs)
	return d, nil
}

// csvBuffers are the parsing buffers of one drop's CSV tables, reused
// from table to table: a zip of a thousand members is read with a few
// buffers, not a few thousand.
type csvBuffers struct {
	caps  *Caps
	head  []byte     // the sniffed head
	spare *csvParser // a parser no table holds
}

// parser returns a parser reading r, the spare one when there is one.
func (b *csvBuffers) parser(r io.Reader, comma byte) *csvParser {
	p := b.spare
	if p == nil {
		return newCSVParser(r, comma, b.caps)
	}
	b.spare = nil
	p.reset(r, comma)
	return p
}

// release keeps p for the next table. Its arena stays append-only, so
// strings already handed out stay valid.
func (b *csvBuffers) release(p *csvParser) {
	if b.spare == nil {
		p.reset(nil, 0)
		b.spare = p
	}
}

// csvTable reads the records of a delimited text file.
type csvTable struct {
	bufs    *csvBuffers
	rc      io.Closer
	p       *csvParser
	row     []string
	line    int // the record's number as a spreadsheet shows it: blank lines count
	endLine int // physical line where the previous record ended
	err     error
}

func openCSV(open streamOpener, d dialect, bufs *csvBuffers) (*csvTable, error) {
	rc, err := open()
	if err != nil {
		return nil, err
	}
	return &csvTable{bufs: bufs, rc: rc, p: bufs.parser(d.decode(rc), byte(d.comma))}, nil
}

func (t *csvTable) Next() bool {
	rec, err := t.p.read()
	if err != nil {
		if err != io.EOF {
			t.err = t.parseError(err)
		}
		return false
	}
	t.line += t.p.start - t.endLine
	t.endLine = t.p.line
	t.row = rec
	return true
}

// parseError turns a parse failure into words for the user, placed on the
// row it belongs to.
func (t *csvTable) parseError(err error) error {
	line := t.line + t.p.start - t.endLine
	var why, hint string
	switch {
	case errors.Is(err, errCSVBareQuote):
		why = `the line is not valid CSV: a value holds a " but is not enclosed in quotes (write it as "..."" with the quote doubled)`
	case errors.Is(err, errCSVQuote):
		why = `the line is not valid CSV: a quoted value is not closed, or text follows its closing quote`
	case errors.Is(err, errCSVLong):
		why = fmt.Sprintf("the row is longer than %d bytes, which no usage row is; is a quote left open?", t.bufs.caps.MaxRowBytes)
		hint = fmt.Sprintf("limits.max_row_bytes is %d", t.bufs.caps.MaxRowBytes)
	case errors.Is(err, errCSVWide):
		why = fmt.Sprintf("the row has more than %d values, more than any usage file holds; is the delimiter right?", t.bufs.caps.MaxColumns)
		hint = fmt.Sprintf("limits.max_columns is %d", t.bufs.caps.MaxColumns)
	case errors.Is(err, errCSVCell):
		why = fmt.Sprintf("the row has a value longer than %d bytes, which no usage value is; is a quote left open?", t.bufs.caps.MaxCellBytes)
		hint = fmt.Sprintf("limits.max_cell_bytes is %d", t.bufs.caps.MaxCellBytes)
	default:
		return err
	}
	return &errRejected{reason: why, hint: hint, line: line}
}

func (t *csvTable) Row() []string { return t.row }
func (t *csvTable) Line() int     { return t.line }
func (t *csvTable) Err() error    { return t.err }
func (t *csvTable) Close() error {
	t.bufs.release(t.p)
	return t.rc.Close()
}

// clean reports that the current row holds no control character, so the
// reader need not look at it value by value.
func (t *csvTable) clean() bool { return !t.p.suspect }

// ascii reports that the current row is plain ASCII.
func (t *csvTable) ascii() bool { return t.p.ascii }

// fileStream opens a file on disk from its start, for each pass.
func fileStream(r io.ReaderAt, size int64) streamOpener {
	return func() (io.ReadCloser, error) {
		return io.NopCloser(io.NewSectionReader(r, 0, size)), nil
	}
}

// csvUnit prepares a delimited text file for the two passes.
func csvUnit(member string, open streamOpener, opt Options, over map[string]field, bufs *csvBuffers) (unit, error) {
	d, err := sniffCSV(open, opt.Encoding, over, bufs)
	if err != nil {
		return unit{}, fmt.Errorf("%w", err)
	}
	return unit{
		member:         member,
		commaAmbiguous: d.comma == ',',
		pointAmbiguous: d.comma != ',',
		open:           func() (table, error) { return openCSV(open, d, bufs) },
	}, nil
}
