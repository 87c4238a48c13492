package convert

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// format is what a dropped file holds, decided from its name and its first
// bytes together; neither alone is trusted.
type format int

const (
	formatUnknown format = iota
	formatCSV
	formatXLSX
	formatZip
)

// errRejected carries a reason meant for the finance user: the file cannot
// be read at all. It becomes a Problem with Line 0, never an error.
type errRejected struct {
	reason string
	hint   string // for the operator (Problem.Hint)
	line   int    // where in the file, 0 for the whole file
}

func (e *errRejected) Error() string { return e.reason }

func reject(format string, args ...any) error {
	return &errRejected{reason: fmt.Sprintf(format, args...)}
}

// rejectHint is reject with a hint for the operator.
func rejectHint(hint, format string, args ...any) error {
	return &errRejected{reason: fmt.Sprintf(format, args...), hint: hint}
}

// asRejected reports whether err is a rejection of the file's content.
func asRejected(err error) (*errRejected, bool) {
	var r *errRejected
	ok := errors.As(err, &r)
	return r, ok
}

const saveAs = "save it as .xlsx or as CSV UTF-8 (comma delimited)"

var (
	magicZip   = []byte("PK\x03\x04")
	magicEmpty = []byte("PK\x05\x06")
	magicOLE   = []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}
)

// textExts are the names under which people drop delimited text.
var textExts = map[string]bool{".csv": true, ".txt": true, ".tsv": true, ".tab": true}

// detect chooses the reader for the file called name. A zip is looked into:
// an office document inside a zip is a spreadsheet, not an archive of
// usage files.
func detect(name string, r io.ReaderAt, size int64, c *Caps) (format, error) {
	ext := strings.ToLower(path.Ext(strings.ReplaceAll(name, `\`, "/")))
	head := make([]byte, 8)
	n, err := r.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return formatUnknown, fmt.Errorf("read %s: %w", name, err)
	}
	head = head[:n]
	switch {
	case size == 0:
		return formatUnknown, reject("the file is empty")
	case bytes.HasPrefix(head, magicOLE):
		if ext == ".xlsx" || ext == ".xlsm" {
			return formatUnknown, reject("the workbook is password-protected (encrypted); remove the password and save it again as .xlsx")
		}
		return formatUnknown, reject("this is a legacy Excel 97-2003 workbook (.xls), which usagedrop does not read; %s", saveAs)
	case bytes.HasPrefix(head, magicZip) || bytes.HasPrefix(head, magicEmpty):
		what := "zip"
		if ext == ".xlsx" || ext == ".xlsm" {
			what = "workbook"
		}
		if err := checkDirectory(r, size, c, what); err != nil {
			return formatUnknown, err
		}
		return detectZip(ext, r, size)
	}
	switch ext {
	case ".xlsx", ".xlsm":
		return formatUnknown, reject("the file is named %s but is not a workbook (it does not start as a zip); it may be damaged or renamed: %s", ext, saveAs)
	case ".xls", ".xlsb", ".ods", ".numbers", ".zip":
		return formatUnknown, reject("the file is named %s but its content is not in that format; %s", ext, saveAs)
	}
	if textExts[ext] {
		return formatCSV, nil
	}
	return formatUnknown, reject("unknown file type %q: usagedrop reads .csv, .txt, .xlsx, .xlsm and .zip; %s", ext, saveAs)
}

// detectZip tells workbooks from archives and names the formats we refuse.
func detectZip(ext string, r io.ReaderAt, size int64) (format, error) {
	names, err := zipNames(r, size)
	if err != nil {
		if ext == ".xlsx" || ext == ".xlsm" {
			return formatUnknown, reject("the workbook is damaged or incomplete (%v); open it in Excel and save it again", err)
		}
		return formatUnknown, reject("the zip file is damaged or incomplete (%v)", err)
	}
	switch {
	case names["xl/workbook.xml"]:
		if ext == ".xlsb" {
			return formatUnknown, reject("binary Excel workbooks (.xlsb) are not read; %s", saveAs)
		}
		return formatXLSX, nil
	case names["xl/workbook.bin"]:
		return formatUnknown, reject("binary Excel workbooks (.xlsb) are not read; %s", saveAs)
	case names["content.xml"] && names["mimetype"]:
		return formatUnknown, reject("OpenDocument spreadsheets (.ods) are not read; %s", saveAs)
	case names["Index/Document.iwa"] || ext == ".numbers":
		return formatUnknown, reject("Apple Numbers files are not read; in Numbers choose File > Export To > Excel or CSV")
	case ext == ".xlsx" || ext == ".xlsm":
		return formatUnknown, reject("the file is named %s but holds no workbook (xl/workbook.xml is missing); it may be damaged: %s", ext, saveAs)
	case ext == ".zip":
		return formatZip, nil
	}
	return formatUnknown, reject("the file is named %q but is a zip archive; name it .zip if it holds usage files", ext)
}
