package xlsx

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Limits bound what a workbook from a stranger may make us inflate, hold
// and scan. Zero fields take the defaults of DefaultLimits. Each field
// says the words a finance user sees, after "the workbook is refused:",
// when a workbook crosses it.
type Limits struct {
	// MaxSheet caps the inflated size of one worksheet part. "its sheet
	// part xl/worksheets/sheet1.xml inflates past the limit of 2147483648
	// bytes".
	MaxSheet int64
	// MaxPart caps every other part read: shared strings, styles,
	// workbook, relationships. "its part xl/styles.xml inflates past the
	// limit of 268435456 bytes".
	MaxPart int64
	// MaxRatio caps inflated bytes per compressed byte of a part, checked
	// once a part has inflated past RatioFloor bytes. Spreadsheet XML
	// compresses 10 to 40 times; a zip bomb compresses about 1000 times.
	// "its part ... inflates past N bytes, an absurd compression ratio".
	MaxRatio int64
	// RatioFloor is the inflated size under which the ratio is not checked,
	// so that small, very regular parts are never refused.
	RatioFloor int64
	// MaxParts caps the members of the workbook's zip. Excel writes a
	// dozen plus one per sheet, image and chart. "it holds 20000 parts;
	// the limit is 10000".
	MaxParts int
	// MaxSheets caps the sheets a workbook lists. "it lists 300 sheets;
	// the limit is 256".
	MaxSheets int
	// MaxDepth caps how deeply XML elements nest in any part. Excel's
	// parts nest under 10 deep. "its part xl/workbook.xml nests XML
	// elements more than 64 deep".
	MaxDepth int
	// MaxElement caps the bytes of one XML element that must be whole in
	// memory: a cell with its value, a shared string, a tag with its
	// attributes. "its part ... has an XML element longer than 4194304
	// bytes".
	MaxElement int
	// MaxCellChars caps the characters of one cell's value: Excel's own
	// limit is 32,767. "cell A3 has 40000 characters; Excel's limit is
	// 32767".
	MaxCellChars int
	// MaxRowBytes caps the text of one row's cells together. "row 3 holds
	// more than 4194304 bytes of text".
	MaxRowBytes int
	// MaxStyles caps the cell formats (cellXfs) and number formats of the
	// styles part; Excel allows 64,000 formats. "its styles define more
	// than 65536 cell formats".
	MaxStyles int
	// SharedInMemory is the size of shared-string table (text plus 4
	// bytes a string) held in memory; a larger table moves to a temporary
	// file in TempDir and is read back from there. It is not a refusal:
	// the user sees nothing.
	SharedInMemory int64
	// TempDir is where a large shared-string table goes; "" is
	// os.TempDir. The file is removed as soon as it is made, so nothing
	// is left behind even by a crash.
	TempDir string
}

// DefaultLimits are generous for real workbooks (a 1M-row sheet is about
// 520 MB of XML) and small enough that a bomb is refused early and that
// reading any workbook stays under 64 MB of memory.
func DefaultLimits() Limits {
	return Limits{
		MaxSheet:       2 << 30,
		MaxPart:        256 << 20,
		MaxRatio:       200,
		RatioFloor:     64 << 20,
		MaxParts:       10_000,
		MaxSheets:      256,
		MaxDepth:       64,
		MaxElement:     4 << 20,
		MaxCellChars:   32_767,
		MaxRowBytes:    4 << 20,
		MaxStyles:      65_536,
		SharedInMemory: 8 << 20,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	pick64 := func(v *int64, own int64) {
		if own > 0 {
			*v = own
		}
	}
	pick := func(v *int, own int) {
		if own > 0 {
			*v = own
		}
	}
	pick64(&d.MaxSheet, l.MaxSheet)
	pick64(&d.MaxPart, l.MaxPart)
	pick64(&d.MaxRatio, l.MaxRatio)
	pick64(&d.RatioFloor, l.RatioFloor)
	pick64(&d.SharedInMemory, l.SharedInMemory)
	pick(&d.MaxParts, l.MaxParts)
	pick(&d.MaxSheets, l.MaxSheets)
	pick(&d.MaxDepth, l.MaxDepth)
	pick(&d.MaxElement, l.MaxElement)
	pick(&d.MaxCellChars, l.MaxCellChars)
	pick(&d.MaxRowBytes, l.MaxRowBytes)
	pick(&d.MaxStyles, l.MaxStyles)
	d.TempDir = l.TempDir
	return d
}

// ErrTooLarge is wrapped by every error of a workbook refused by Limits.
var ErrTooLarge = errors.New("over the workbook limits")

// ErrTemp is wrapped by errors of the temporary file a large shared-string
// table moves to: a fault of this machine (a full or unwritable disk), not
// of the workbook, so worth trying again.
var ErrTemp = errors.New("temporary file for shared strings")

// LimitError is a workbook refused by one of its Limits: what was over
// which limit, and where. It wraps ErrTooLarge.
type LimitError struct {
	Part  string // the zip member, e.g. "xl/worksheets/sheet1.xml"; "" for the zip itself
	Sheet string // the sheet's name, "" outside a sheet
	Row   int    // 1-based sheet row; 0 when not in a row
	Col   int    // 0-based column; -1 when not at a cell
	// Reason says what was too large, in words for a finance user, e.g.
	// "the cell has 40000 characters; Excel's limit is 32767".
	Reason string
}

func (e *LimitError) Error() string {
	var b strings.Builder
	switch {
	case e.Sheet != "":
		b.WriteString("sheet " + strconv.Quote(e.Sheet))
	case e.Part != "":
		b.WriteString("part " + e.Part)
	}
	switch {
	case e.Row > 0 && e.Col >= 0:
		b.WriteString(", cell " + CellName(e.Col, e.Row))
	case e.Row > 0:
		b.WriteString(", row " + strconv.Itoa(e.Row))
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

func (e *LimitError) Unwrap() error { return ErrTooLarge }

// overPart is a LimitError of a whole part.
func overPart(part, format string, args ...any) *LimitError {
	return &LimitError{Part: part, Col: -1, Reason: fmt.Sprintf(format, args...)}
}

// openPart opens a zip member for streaming, refusing it up front when its
// declared sizes break the limits, and checking the actual bytes as they
// inflate, since declared sizes are the stranger's word.
func openPart(f *zip.File, max int64, lim Limits) (io.ReadCloser, error) {
	if f.UncompressedSize64 > uint64(max) {
		return nil, overPart(f.Name, "the part declares %d bytes inflated, over the limit of %d", f.UncompressedSize64, max)
	}
	if f.UncompressedSize64 > uint64(lim.RatioFloor) && f.UncompressedSize64/(f.CompressedSize64+1) > uint64(lim.MaxRatio) {
		return nil, overPart(f.Name, "the part declares a compression ratio over %d:1, as a zip bomb does", lim.MaxRatio)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", f.Name, err)
	}
	return &guard{rc: rc, name: f.Name, max: max, ratioAt: ratioAt(f.CompressedSize64, lim)}, nil
}

// ratioAt is the inflated size past which a part's ratio is absurd.
func ratioAt(compressed uint64, lim Limits) int64 {
	n := int64(compressed+1) * lim.MaxRatio
	if n < lim.RatioFloor || n < 0 {
		return lim.RatioFloor
	}
	return n
}

// guard counts inflated bytes and fails the read that crosses a limit.
type guard struct {
	rc      io.ReadCloser
	name    string
	n       int64
	max     int64
	ratioAt int64
}

func (g *guard) Read(p []byte) (int, error) {
	n, err := g.rc.Read(p)
	g.n += int64(n)
	switch {
	case g.n > g.max:
		return n, overPart(g.name, "the part inflates past the limit of %d bytes", g.max)
	case g.n > g.ratioAt:
		return n, overPart(g.name, "the part inflates past %d bytes, an absurd compression ratio, as a zip bomb has", g.ratioAt)
	case err != nil && err != io.EOF:
		return n, fmt.Errorf("read %s: %w", g.name, err)
	}
	return n, err
}

func (g *guard) Close() error { return g.rc.Close() }
