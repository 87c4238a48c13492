package convert

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// csvParser reads RFC 4180 records with the same results as encoding/csv
// configured with LazyQuotes off and FieldsPerRecord -1 (a differential
// fuzz test holds it to that), but about twice as fast on the common line
// without quotes: one IndexByte per field and one string per record.
type csvParser struct {
	r       *bufio.Reader
	comma   byte
	line    int // physical lines read so far
	long    []byte
	buf     []byte
	strs    arena // the records' text: one allocation for hundreds
	ends    []int
	row     []string
	start   int // physical line where the current record starts
	errLine int // physical line of the last error
}

// errCSVQuote and errCSVBareQuote mirror encoding/csv's complaints;
// errCSVLong bounds memory, since no usage row comes near it.
var (
	errCSVQuote     = errors.New(`extraneous or missing " in quoted-field`)
	errCSVBareQuote = errors.New(`bare " in non-quoted-field`)
	errCSVLong      = errors.New("record too long")
)

// maxRecord is the longest record read. A valid usage row is under 1 KiB
// (DESCRIPTION is at most 200 characters); this leaves room for many
// ignored columns.
const maxRecord = 1 << 20

func newCSVParser(r io.Reader, comma byte) *csvParser {
	return &csvParser{r: bufio.NewReaderSize(r, 64<<10), comma: comma}
}

// readLine returns the next physical line with "\r\n" folded to "\n", as
// encoding/csv does; the slice is valid until the next call.
func (p *csvParser) readLine() ([]byte, error) {
	line, err := p.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		p.long = append(p.long[:0], line...)
		for err == bufio.ErrBufferFull {
			if len(p.long) > maxRecord {
				return nil, errCSVLong
			}
			line, err = p.r.ReadSlice('\n')
			p.long = append(p.long, line...)
		}
		line = p.long
	}
	if len(line) > 0 && err == io.EOF {
		err = nil
		if line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
	}
	if n := len(line); n >= 2 && line[n-2] == '\r' && line[n-1] == '\n' {
		line[n-2] = '\n'
		line = line[:n-1]
	}
	if len(line) > 0 {
		p.line++
	}
	return line, err
}

// read returns the next record's fields, valid until the next call.
func (p *csvParser) read() ([]string, error) {
	var line []byte
	var err error
	for {
		line, err = p.readLine()
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
		if line, more, err = p.field(line); err != nil {
			p.errLine = p.line
			return nil, err
		}
		p.ends = append(p.ends, len(p.buf))
		if !more {
			break
		}
	}
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
			if len(p.buf) > maxRecord {
				return nil, false, errCSVLong
			}
			next, rerr := p.readLine()
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
