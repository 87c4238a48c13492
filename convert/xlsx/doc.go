// Package xlsx streams the cell values of xlsx and xlsm workbooks, fast and
// in bounded memory.
//
// Open reads a workbook's structure (sheets, date system, shared strings,
// the styles' date formats); Workbook.Rows streams one sheet's rows. Values
// are as stored, never as displayed: numbers are their stored text, dates
// are serials with a flag saying their format shows a date, formulas give
// their cached results. Cell.Decimal and Cell.Time turn values into what a
// finance user sees.
//
// A sheet's XML is inflated in one goroutine and scanned in the caller's by
// a purpose-built scanner, because encoding/xml (and excelize's row
// iterator built on it) is several times slower than inflating the part.
//
// # Caveats
//
//   - The shared-string table is held in memory, compactly (its text plus
//     4 bytes per string); everything else is streamed in a few fixed
//     chunks. Typical workbooks peak near 20 MB RSS at any row count, but
//     one with two unique strings on each of a million rows (29 MB of text)
//     peaks at 65 MB under the default GOGC, 49 MB with GOMEMLIMIT=48MiB.
//   - Workbooks are strangers' zips: parts are refused past Limits, declared
//     or actual, checked while inflating. A damaged or truncated workbook is
//     an error from Open or Rows.Err, never a panic.
//   - Only what a reader of values needs is read: no formatting, merged
//     cells, comments or formulas' text. Encrypted workbooks (an OLE file,
//     not a zip) and the binary .xlsb format are not readable.
//   - Cells and rows must appear in order, as every producer writes them;
//     a sheet that repeats or reorders them is refused as damaged.
package xlsx
