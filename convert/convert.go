// Package convert turns dropped usage files into Zuora's usage template.
//
// Readers (template CSV, other CSV dialects, xlsx, zip) produce Records;
// every record is validated as Zuora's file import would; valid records are
// written to template CSV parts that fit Zuora's upload limits. Nothing here
// knows where files come from or where they go.
//
// Each table (a CSV, a worksheet, a zip member) is read twice from disk: a
// first pass finds the header row and gathers evidence for the date order
// and the decimal mark, stopping as soon as they are settled; the second
// validates and emits. Memory stays flat whatever the file's size, and
// whatever its shape: every cap in Caps is met while reading, before the
// memory it guards is spent.
//
// Every row the second pass reads is accounted for: sent on to the
// template, reported as a problem, or skipped (titles, the header, blank
// rows). The reader counts rows as the table yields them and again by what
// became of them; the template writer counts what it wrote. If the numbers
// differ, that is a bug in usagedrop and the file is rejected saying so
// ("rows did not add up"), never sent short. Summary.Rows holds the counts.
//
// # Caveats
//
//   - A decision is made from the first value that settles it (a day above
//     12, a decimal point). A later value that contradicts it is a bad row,
//     not a reason to re-decide; a column that never settles is a file
//     problem asking for date_format or decimal_comma.
//   - CSV line ends may be CRLF, LF or a bare CR (Excel for Mac's "CSV
//     (Macintosh)"), mixed in one file: each ends a row outside quotes.
//     Inside quotes a line break of any kind stays in the value, as LF.
//   - A row with non-empty values beyond its header's last column is
//     reported: its values have most likely shifted. Empty extra values
//     are ignored.
//   - Tab, and a line break inside a value, are text. Every other control
//     character (NUL, ESC, DEL, the C1 block) is refused in any row and any
//     column, the ignored ones included, wherever it is in the file. Only
//     the encoding is decided from the first 64 KiB; a later byte that is
//     not UTF-8 is reported where it lands in a template column.
//   - Line numbers are rows as a spreadsheet shows them: for CSV the header
//     is line 1 when it is the first row, blank lines count, and a quoted
//     value with line breaks is one row; for xlsx, the sheet's row number.
//   - Hidden rows are data: Zuora would import them. Without Options.Sheet,
//     visible sheets are tried before hidden ones.
//   - A date cell's time of day is dropped; Zuora's dates are dates.
//   - UNIQUE_KEY uniqueness keeps an 8-byte hash per key for the drop.
//   - A compressed workbook inside a zip is inflated, under the zip-bomb
//     limits, to a temporary file (workbooks need random access): in
//     Convert's dir, else in os.TempDir; a stored one is read in place.
package convert

import (
	"context"
	"io"

	"usagedrop/usage"
)

// Record is one usage row, normalised; Custom holds the template's custom
// fields, in the order Template.Columns names them.
type Record = usage.Record

// Problem is one reason a file is rejected. Problems are meant for a finance
// user: Reason uses Zuora's own words where they fit, and says what to
// write instead (explain.go holds those sentences).
type Problem struct {
	Member string // entry inside a zip, "" otherwise
	Sheet  string // worksheet name for spreadsheets, "" otherwise
	Line   int    // 1-based; the header is line 1 in a CSV; 0 for the whole file
	Column string // template column, e.g. "QTY", else the sheet's letter ("column F"); "" for the whole file
	// Header is the column's name as the file's header row writes it
	// ("Start Date"), when that is not just Column; "" otherwise.
	// ColumnName puts the two together.
	Header string
	// Value is the value as the user wrote it, clipped to
	// Caps.MaxValueBytes. It may hold any bytes, a control character
	// included: whoever shows it escapes it (safetext), once.
	Value string
	// Reason is for the finance user: what is wrong and what to write
	// instead, in their words; it never names a setting.
	Reason string
	// Hint is for the operator: the setting that would change the
	// outcome ("set decimal_comma: yes ..."), or "". Reports to the user
	// leave it out; the log, the ledger and `usagedrop check` show it.
	Hint string
}

// Options are a source's settings for reading its files.
type Options struct {
	// DateFormat is the order of dates in the source: "MM/DD/YYYY",
	// "DD/MM/YYYY", "DD.MM.YYYY", "YYYY-MM-DD". Empty infers it per file
	// from the whole column, and rejects a column that stays ambiguous.
	DateFormat string
	// DecimalComma: "yes", "no", or "" to infer it when unambiguous.
	DecimalComma string
	// Sheet names the worksheet to read; empty takes the first sheet whose
	// header row is recognised.
	Sheet string
	// Columns maps a template column ("ACCOUNT_ID"), or a custom field the
	// template carries ("Region__c"), to the source's header.
	Columns map[string]string
	// Encoding overrides detection: "utf-8", "utf-16le", "utf-16be",
	// "windows-1252".
	Encoding string
	// Caps bound what one drop may cost; zero fields take DefaultCaps.
	Caps Caps
}

// Summary tells what a read found.
type Summary struct {
	Records      int
	Problems     []Problem
	MoreProblems int      // problems beyond Caps.MaxProblems
	Ignored      []string // source columns that map to no template column
	MoreIgnored  int      // ignored column names past Caps.MaxHeaderCells, counted once per table
	// Rows accounts for every row of every table read (a CSV, a zip
	// member, a worksheet), in reading order.
	Rows []RowCount
}

// RowCount accounts for the rows of one table: every row read is sent,
// reported, or skipped, and In is counted apart from the three, as the
// table yields rows. A table whose counts do not add up rejects the file.
// A table refused before its rows were read (no header, a line the first
// pass could not parse) has no RowCount: its file-level problem covers it.
type RowCount struct {
	Member   string `json:"member,omitempty"`
	Sheet    string `json:"sheet,omitempty"`
	In       int    `json:"in"`       // rows the table yielded, header and titles included
	Out      int    `json:"out"`      // records sent on to the template
	Reported int    `json:"reported"` // rows with at least one problem
	Skipped  int    `json:"skipped"`  // title, header and blank rows
}

// Balanced reports whether every row read is accounted for.
func (c RowCount) Balanced() bool { return c.In == c.Out+c.Reported+c.Skipped }

// Rejected reports whether the file must not be sent.
func (s *Summary) Rejected() bool { return len(s.Problems) > 0 }

// TotalProblems is how many problems the read found: those kept in
// Problems and those only counted.
func (s *Summary) TotalProblems() int { return len(s.Problems) + s.MoreProblems }

// Read streams the valid records of the file called name to fn, and
// collects the problems of the invalid ones. The format is chosen from the
// name and the first bytes. A file that cannot be read at all (damaged,
// unknown format, unsafe zip) gives a Problem with Line 0, not an error;
// the error is for I/O failures and for errors returned by fn.
func Read(ctx context.Context, name string, r io.ReaderAt, size int64, opt Options, fn func(Record) error) (Summary, error) {
	return readAll(ctx, name, r, size, opt, fn)
}

// Template describes the CSV that Zuora receives.
type Template struct {
	// Columns in order; nil means the classic eight: ACCOUNT_ID, UOM, QTY,
	// STARTDATE, ENDDATE, SUBSCRIPTION_ID, CHARGE_ID, DESCRIPTION. A
	// custom field of the tenant's Usage object (Region__c) is read from
	// the source column of that name, or of that name without "__c"
	// ("Region"), or the one Options.Columns maps to it.
	Columns []string
	// DateFormat is the Zuora API user's locale: "MM/DD/YYYY" (default) or
	// "DD/MM/YYYY".
	DateFormat string
}

// Limits of one upload. Zero values mean Zuora's: 4,194,304 bytes, 50
// characters.
type Limits struct {
	MaxBytes int64
	MaxName  int
}

// Part is one file ready to upload.
type Part struct {
	Index   int    // 0-based
	Name    string // upload name: at most MaxName characters of [A-Za-z0-9._-], ends in .csv or .zip
	Path    string // where it is on disk
	Size    int64
	SHA256  string // hex, of the bytes at Path
	Records int
}

// Result is what Convert produced.
type Result struct {
	Summary
	Parts []Part // empty when rejected
}

// Convert reads the file called name, validates every record, and, if none
// is rejected, writes it as template CSV parts into dir. Parts are named
// from the dropped name and id (a short string unique to the drop, e.g. a
// hash prefix) so that every part name is unique and fits the limit. One
// part is preferred; an oversized part is zipped; only a zip still over the
// limit is split on row boundaries. When the file is rejected nothing is
// left in dir. Like Read, problems with the file are in the Result; a
// file larger than Options.Caps.MaxFileSize is refused unread.
func Convert(ctx context.Context, name, id string, r io.ReaderAt, size int64, opt Options, t Template, lim Limits, dir string) (*Result, error) {
	return convertFile(ctx, name, id, r, size, opt, t, lim, dir)
}

// WriteTemplate reads the file called name like Read and writes every valid
// record to w as one template CSV, with no size limit (for `usagedrop check
// -o`). The caller discards w when the summary says the file is rejected.
func WriteTemplate(ctx context.Context, name string, r io.ReaderAt, size int64, opt Options, t Template, w io.Writer) (Summary, error) {
	return writeTemplate(ctx, name, r, size, opt, t, w, "")
}
