package convert

import (
	"fmt"

	"usagedrop/internal/safetext"
)

// Caps bound what one drop may make usagedrop hold, read or write. Every
// cap is met while reading, before the memory it guards is spent, and ends
// in a sentence the finance user sees in the file's report. A zero field
// takes its default (see DefaultCaps); the config's limits: section sets
// them under the keys named below.
type Caps struct {
	// MaxFileSize (max_file_size) is the largest dropped file accepted.
	// Default 1 GiB. The user sees: "the file is 1.5 GB, larger than the
	// 1.0 GB usagedrop accepts (max_file_size); split it into smaller
	// files and drop them one by one".
	MaxFileSize int64
	// MaxColumns (max_columns) is the most values one CSV row, or one
	// worksheet row, may hold. Default 16,384, Excel's own column limit.
	// The user sees, on the row's line: "the row has more than 16384
	// values, more than any usage file holds (max_columns); is the
	// delimiter right?".
	MaxColumns int
	// MaxCellBytes (max_cell_bytes) is the longest value one cell may
	// hold. Default 131,072 bytes: any cell Excel can hold (32,767
	// characters of up to 4 bytes). The user sees, on the row's line: "the
	// row has a value longer than 131072 bytes, which no usage value is
	// (max_cell_bytes); is a quote left open?".
	MaxCellBytes int
	// MaxRowBytes (max_row_bytes) is the longest CSV row read. Default 1
	// MiB. The user sees, on the row's line: "the row is longer than
	// 1048576 bytes, which no usage row is (max_row_bytes); is a quote
	// left open?".
	MaxRowBytes int
	// MaxHeaderCells (max_header_cells) is how many column names of a
	// header are kept to show the user (columns not sent, columns found);
	// the rest are counted. Default 100. The user sees the first ones and
	// "... and 412 more".
	MaxHeaderCells int
	// MaxProblems (max_problems) is how many problems are kept with their
	// row, column and value; the rest are only counted. Default 100. The
	// user sees the first ones, then "... and 9,900 more problems".
	MaxProblems int
	// MaxReportBytes (max_report_bytes) is how much text the kept
	// problems may hold together (reasons, values, names), so that a
	// report of a hundred long problems stays small. Default 65,536. Past
	// it problems are only counted, as past MaxProblems.
	MaxReportBytes int
	// MaxMessageBytes (max_message_bytes) is the longest one problem's
	// reason may be. Default 2,048 bytes. Longer text ends in "… (N more
	// bytes)".
	MaxMessageBytes int
	// MaxValueBytes (max_value_bytes) is how much of a bad value, a zip
	// entry's or a sheet's name a problem quotes. Default 100 bytes.
	// Longer text ends in "… (N more bytes)".
	MaxValueBytes int
	// MaxZipEntries (max_zip_entries) is the most entries a dropped zip
	// may list. Default 1,000. The user sees: "the zip holds 1500
	// entries, more than the 1000 usagedrop accepts (max_zip_entries)".
	MaxZipEntries int
	// MaxZipBytes (max_zip_bytes) is the most all of a zip's entries may
	// expand to together, as declared and as inflated. Default 1 GiB. The
	// user sees: "the zip expands to more than 1073741824 bytes
	// (max_zip_bytes); refusing it as a possible zip bomb".
	MaxZipBytes int64
	// MaxZipRatio (max_zip_ratio) is the most an entry over 1 MiB may
	// expand relative to its compressed size. Default 200. The user sees:
	// "the zip entry "a.csv" expands 1030 times (max_zip_ratio 200);
	// refusing it as a possible zip bomb".
	MaxZipRatio int
}

// DefaultCaps returns the caps a zero Caps stands for.
func DefaultCaps() Caps {
	return Caps{
		MaxFileSize:     1 << 30,
		MaxColumns:      16384,
		MaxCellBytes:    128 << 10,
		MaxRowBytes:     1 << 20,
		MaxHeaderCells:  100,
		MaxProblems:     100,
		MaxReportBytes:  64 << 10,
		MaxMessageBytes: 2048,
		MaxValueBytes:   100,
		MaxZipEntries:   1000,
		MaxZipBytes:     1 << 30,
		MaxZipRatio:     200,
	}
}

// WithDefaults returns c with every zero or negative field filled from
// DefaultCaps.
func (c Caps) WithDefaults() Caps {
	d := DefaultCaps()
	pick := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	pick(&c.MaxColumns, d.MaxColumns)
	pick(&c.MaxCellBytes, d.MaxCellBytes)
	pick(&c.MaxRowBytes, d.MaxRowBytes)
	pick(&c.MaxHeaderCells, d.MaxHeaderCells)
	pick(&c.MaxProblems, d.MaxProblems)
	pick(&c.MaxReportBytes, d.MaxReportBytes)
	pick(&c.MaxMessageBytes, d.MaxMessageBytes)
	pick(&c.MaxValueBytes, d.MaxValueBytes)
	pick(&c.MaxZipEntries, d.MaxZipEntries)
	pick(&c.MaxZipRatio, d.MaxZipRatio)
	if c.MaxFileSize <= 0 {
		c.MaxFileSize = d.MaxFileSize
	}
	if c.MaxZipBytes <= 0 {
		c.MaxZipBytes = d.MaxZipBytes
	}
	// A message must have room for its clipping note.
	c.MaxMessageBytes = max(c.MaxMessageBytes, 64)
	c.MaxValueBytes = max(c.MaxValueBytes, 32)
	return c
}

// TooLarge is the sentence for a dropped file of size bytes that is over
// MaxFileSize, or "" when it is not. Convert uses it; a copy that stops at
// the cap uses it too, so the user reads the same words either way.
func (c Caps) TooLarge(size int64) string {
	c = c.WithDefaults()
	if size <= c.MaxFileSize {
		return ""
	}
	return fmt.Sprintf("the file is %s, larger than the %s usagedrop accepts; split it into smaller files and drop them one by one",
		byteSize(size), byteSize(c.MaxFileSize))
}

// TooLargeHint is what an operator reads beside TooLarge's sentence: the
// setting the user's words leave out.
func (c Caps) TooLargeHint() string {
	return fmt.Sprintf("limits.max_file_size is %d bytes", c.WithDefaults().MaxFileSize)
}

// byteSize writes n for a finance user: "1.5 GB", "820 KB", "12 bytes".
func byteSize(n int64) string {
	const k = 1024
	switch {
	case n >= k*k*k:
		return fmt.Sprintf("%.1f GB", float64(n)/(k*k*k))
	case n >= k*k:
		return fmt.Sprintf("%.1f MB", float64(n)/(k*k))
	case n >= k:
		return fmt.Sprintf("%d KB", n/k)
	}
	return fmt.Sprintf("%d bytes", n)
}

// clip cuts a problem's texts to the caps: a hostile file's values,
// names and messages never make a report, a ledger entry or a status page
// large.
func (c *Caps) clip(p Problem) Problem {
	p.Value = safetext.Clip(p.Value, c.MaxValueBytes)
	p.Member = safetext.Clip(p.Member, c.MaxValueBytes)
	p.Sheet = safetext.Clip(p.Sheet, c.MaxValueBytes)
	p.Header = safetext.Clip(p.Header, c.MaxValueBytes)
	p.Reason = safetext.Clip(p.Reason, c.MaxMessageBytes)
	p.Hint = safetext.Clip(p.Hint, c.MaxMessageBytes)
	return p
}
