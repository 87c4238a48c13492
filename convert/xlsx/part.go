package xlsx

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
)

// Limits bound what a workbook from a stranger may make us inflate. Zero
// fields take the defaults of DefaultLimits.
type Limits struct {
	// MaxSheet caps the inflated size of one worksheet part.
	MaxSheet int64
	// MaxPart caps every other part read: shared strings, styles, workbook.
	MaxPart int64
	// MaxRatio caps inflated bytes per compressed byte of a part, checked
	// once a part has inflated past RatioFloor bytes. Spreadsheet XML
	// compresses 10 to 40 times; a zip bomb compresses about 1000 times.
	MaxRatio int64
	// RatioFloor is the inflated size under which the ratio is not checked,
	// so that small, very regular parts are never refused.
	RatioFloor int64
}

// DefaultLimits are generous for real workbooks (a 1M-row sheet is about
// 520 MB of XML) and small enough that a bomb is refused early: 2 GiB per
// sheet, 256 MiB per other part, 200:1 past 64 MiB.
func DefaultLimits() Limits {
	return Limits{
		MaxSheet:   2 << 30,
		MaxPart:    256 << 20,
		MaxRatio:   200,
		RatioFloor: 64 << 20,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxSheet > 0 {
		d.MaxSheet = l.MaxSheet
	}
	if l.MaxPart > 0 {
		d.MaxPart = l.MaxPart
	}
	if l.MaxRatio > 0 {
		d.MaxRatio = l.MaxRatio
	}
	if l.RatioFloor > 0 {
		d.RatioFloor = l.RatioFloor
	}
	return d
}

// ErrTooLarge is wrapped by errors for parts refused by Limits.
var ErrTooLarge = errors.New("part exceeds the size limits")

// openPart opens a zip member for streaming, refusing it up front when its
// declared sizes break the limits, and checking the actual bytes as they
// inflate, since declared sizes are the stranger's word.
func openPart(f *zip.File, max int64, lim Limits) (io.ReadCloser, error) {
	if f.UncompressedSize64 > uint64(max) {
		return nil, fmt.Errorf("%s: declares %d bytes inflated, over the limit of %d: %w", f.Name, f.UncompressedSize64, max, ErrTooLarge)
	}
	if f.UncompressedSize64 > uint64(lim.RatioFloor) && f.UncompressedSize64/(f.CompressedSize64+1) > uint64(lim.MaxRatio) {
		return nil, fmt.Errorf("%s: declares a compression ratio over %d:1: %w", f.Name, lim.MaxRatio, ErrTooLarge)
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
		return n, fmt.Errorf("%s: inflates past the limit of %d bytes: %w", g.name, g.max, ErrTooLarge)
	case g.n > g.ratioAt:
		return n, fmt.Errorf("%s: inflates past %d bytes, an absurd compression ratio: %w", g.name, g.ratioAt, ErrTooLarge)
	case err != nil && err != io.EOF:
		return n, fmt.Errorf("read %s: %w", g.name, err)
	}
	return n, err
}

func (g *guard) Close() error { return g.rc.Close() }
