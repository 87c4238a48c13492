package convert

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
)

// csvParser reads RFC 4180 records with the same results as encoding/csv
// configured with LazyQuotes off and FieldsPerRecord -1, run over the text
// after eolReader (a differential fuzz test holds it to that), but about
// twice as fast on the common line without quotes: one IndexByte per field
// and one string per record. It stops at the caps while reading, before a
// hostile row costs the memory they guard.
type csvParser struct {
	r       *bufio.Reader
	comma   byte
	maxCols int
	maxCell int
	maxRow  int
	line    int // physical lines read so far
	long    []byte
	buf     []byte
	strs    arena // the records' text: one allocation for hundreds
	ends    []int
	row     []string
	start   int  // physical line where the current record starts
	errLine int  // physical line of the last error
	suspect bool // the record may hold a control character: see mayHoldControl
}

// errCSVQuote and errCSVBareQuote mirror encoding/csv's complaints;
// errCSVLong, errCSVWide and errCSVCell are the caps on a row's bytes, its
// values and one value's bytes.
var (
	errCSVQuote     = errors.New(`extraneous or missing " in quoted-field`)
	errCSVBareQuote = errors.New(`bare " in non-quoted-field`)
	errCSVLong      = errors.New("record too long")
	errCSVWide      = errors.New("record has too many fields")
	errCSVCell      = errors.New("field too long")
)

func newCSVParser(r io.Reader, comma byte, c *Caps) *csvParser {
	return &csvParser{
		r:     bufio.NewReaderSize(&eolReader{r: r}, 64<<10),
		comma: comma, maxCols: c.MaxColumns, maxCell: c.MaxCellBytes, maxRow: c.MaxRowBytes,
	}
}

// reset makes p read r from its start, keeping its buffers.
func (p *csvParser) reset(r io.Reader, comma byte) {
	p.r.Reset(&eolReader{r: r})
	p.comma, p.line, p.start, p.errLine, p.suspect = comma, 0, 0, 0, false
}

// eolReader turns every line end into LF: CRLF (Windows), bare CR (Excel
// for Mac's "CSV (Macintosh)", old Mac tools) and LF alike, so that a file
// with mixed ends is read as the rows its author saw. Inside quotes a line
// break stays a line break in the value, as LF, which is how encoding/csv
// folds CRLF there too.
type eolReader struct {
	r  io.Reader
	cr bool // the last byte passed on was a CR: an LF next is its pair
}

func (e *eolReader) Read(p []byte) (int, error) {
	for {
		n, err := e.r.Read(p)
		i := 0
		if e.cr && n > 0 && p[0] == '\n' {
			i = 1
		}
		if n > 0 {
			e.cr = false
		}
		w := 0
		for i < n {
			j := bytes.IndexByte(p[i:n], '\r')
			if j < 0 {
				j = n - i
			}
			if w != i {
				copy(p[w:], p[i:i+j])
			}
			w, i = w+j, i+j
			if i == n {
				break
			}
			p[w] = '\n'
			w, i = w+1, i+1
			switch {
			case i == n:
				e.cr = true
			case p[i] == '\n':
				i++
			}
		}
		if w > 0 || err != nil {
			return w, err
		}
	}
}

// readLine returns the next physical line, ending in "\n" unless it is the
// last; the slice is valid until the next call. quoted says the line
// continues a quoted value. A line longer than the buffer is refused as
// soon as it holds more values than the cap, so that a row of half a
// million values costs one buffer, not the whole row.
func (p *csvParser) readLine(quoted bool) ([]byte, error) {
	line, err := p.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		p.long = append(p.long[:0], line...)
		fields := 1
		for err == bufio.ErrBufferFull {
			if fields, quoted = p.countFields(line, fields, quoted); fields > p.maxCols {
				return nil, errCSVWide
			}
			if len(p.long) > p.maxRow {
				return nil, errCSVLong
			}
			line, err = p.r.ReadSlice('\n')
			p.long = append(p.long, line...)
		}
		line = p.long
	}
	if len(line) > 0 && err == io.EOF {
		err = nil
	}
	if len(line) > 0 {
		p.line++
	}
	return line, err
}

// countFields adds the delimiters outside quotes in b to n; quoted is
// the quote state at b's start and end. A doubled quote toggles twice, so
// the state stays right without parsing.
func (p *csvParser) countFields(b []byte, n int, quoted bool) (int, bool) {
	for len(b) > 0 {
		q := bytes.IndexByte(b, '"')
		if q < 0 {
			q = len(b)
		}
		if !quoted {
			n += bytes.Count(b[:q], []byte{p.comma})
		}
		if q == len(b) {
			break
		}
		quoted, b = !quoted, b[q+1:]
	}
	return n, quoted
}

// read returns the next record's fields, valid until the next call.
func (p *csvParser) read() ([]string, error) {
	var line []byte
	var err error
	for {
		line, err = p.readLine(false)
		if err != nil {
			p.start = p.line + 1 // the record that could not be read
			return nil, err
		}
		if len(line) == 0 {
			return nil, io.EOF
		}
		if !(len(line) == 1 && line[0] == '\n') {
			break // encoding/csv skips empty lines
		}
	}
	p.start = p.line
	p.buf, p.ends = p.buf[:0], p.ends[:0]
	for {
		var more bool
		from := len(p.buf)
		line, more, err = p.field(line)
		switch {
		case err != nil:
		case len(p.buf)-from > p.maxCell:
			err = errCSVCell
		case more && len(p.ends)+1 >= p.maxCols:
			err = errCSVWide
		}
		if err != nil {
			p.errLine = p.line
			return nil, err
		}
		p.ends = append(p.ends, len(p.buf))
		if !more {
			break
		}
	}
	p.suspect = mayHoldControl(p.buf)
	s := p.strs.str(p.buf)
	p.row = p.row[:0]
	from := 0
	for _, end := range p.ends {
		p.row = append(p.row, s[from:end])
		from = end
	}
	return p.row, nil
}

// field parses one field at the start of line into p.buf and returns the
// rest of the line after its delimiter; more is false at the record's end.
func (p *csvParser) field(line []byte) (rest []byte, more bool, err error) {
	if len(line) == 0 || line[0] != '"' {
		i := bytes.IndexByte(line, p.comma)
		f := line
		if i >= 0 {
			f = line[:i]
		} else if len(f) > 0 && f[len(f)-1] == '\n' {
			f = f[:len(f)-1]
		}
		if bytes.IndexByte(f, '"') >= 0 {
			return nil, false, errCSVBareQuote
		}
		p.buf = append(p.buf, f...)
		if i < 0 {
			return nil, false, nil
		}
		return line[i+1:], true, nil
	}
	line = line[1:]
	for {
		i := bytes.IndexByte(line, '"')
		switch {
		case i >= 0:
			p.buf = append(p.buf, line[:i]...)
			line = line[i+1:]
			switch {
			case len(line) > 0 && line[0] == '"':
				p.buf = append(p.buf, '"')
				line = line[1:]
			case len(line) > 0 && line[0] == p.comma:
				return line[1:], true, nil
			case len(line) == 0 || len(line) == 1 && line[0] == '\n':
				return nil, false, nil
			default:
				return nil, false, errCSVQuote
			}
		case len(line) > 0:
			p.buf = append(p.buf, line...)
			if len(p.buf) > p.maxRow {
				return nil, false, errCSVLong
			}
			next, rerr := p.readLine(true)
			if rerr != nil && rerr != io.EOF {
				return nil, false, rerr
			}
			if len(next) == 0 {
				return nil, false, errCSVQuote
			}
			line = next
		default:
			return nil, false, errCSVQuote
		}
	}
}

// mayHoldControl is a fast prefilter for controlAt: false means no byte of
// b is below 0x20, 0x7F, or 0xC2 (the lead byte of the C1 controls), so
// the common record is cleared eight bytes at a time and only a record
// that might hold one is looked at value by value.
func mayHoldControl(b []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	var acc uint64
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		d, c := x^0x7F*ones, x^0xC2*ones
		// A byte below 0x20, equal to 0x7F or to 0xC2 sets its high bit.
		acc |= ((x - 0x20*ones) &^ x) | ((d - ones) &^ d) | ((c - ones) &^ c)
	}
	if acc&highs != 0 {
		return true
	}
	for ; i < len(b); i++ {
		if c := b[i]; c < 0x20 || c == 0x7F || c == 0xC2 {
			return true
		}
	}
	return false
}

// mayHoldControlString is mayHoldControl for a string, which worksheet
// cells are; the byte loads combine into one 8-byte load.
func mayHoldControlString(s string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	var acc uint64
	i := 0
	for ; i+8 <= len(s); i += 8 {
		_ = s[i+7]
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		d, c := x^0x7F*ones, x^0xC2*ones
		acc |= ((x - 0x20*ones) &^ x) | ((d - ones) &^ d) | ((c - ones) &^ c)
	}
	if acc&highs != 0 {
		return true
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7F || c == 0xC2 {
			return true
		}
	}
	return false
}
