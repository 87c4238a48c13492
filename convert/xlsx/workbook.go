package xlsx

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// Workbook is an opened xlsx or xlsm file: its structure is read, its
// sheets are streamed on demand by Rows. A Workbook may serve several Rows
// at once; it holds no open file of its own, only the caller's ReaderAt.
type Workbook struct {
	zr       *zip.Reader
	parts    map[string]*zip.File // by lower-cased part name
	lim      Limits
	sheets   []Sheet
	paths    []string // part name of each sheet, "" when it has none
	date1904 bool
	sst      *sharedStrings
	styles   styles
}

// Sheet is one sheet of a workbook, in workbook order.
type Sheet struct {
	Name   string
	Hidden bool // state="hidden" or "veryHidden"
}

// ErrNoSheet is wrapped by Rows for a sheet name the workbook lacks.
var ErrNoSheet = errors.New("no such sheet")

// Open reads the structure of the workbook in r: its sheets, date system,
// shared strings and styles. A damaged or truncated workbook is an error
// saying what is wrong with it. Parts are inflated within DefaultLimits.
func Open(r io.ReaderAt, size int64) (*Workbook, error) {
	return OpenLimits(r, size, Limits{})
}

// OpenLimits is Open with explicit limits on what may be inflated; zero
// fields take DefaultLimits.
func OpenLimits(r io.ReaderAt, size int64, lim Limits) (*Workbook, error) {
	lim = lim.withDefaults()
	// zip.NewReader holds a File for every entry of the central directory
	// it reads, and reads entries until one is malformed: only a budget on
	// what it reads keeps a directory of a million entries from costing
	// hundreds of megabytes before they can be counted.
	budget := &dirBudget{r: r, left: 66<<10 + int64(lim.MaxParts)*256}
	zr, err := zip.NewReader(budget, size)
	budget.left = -1
	if errors.Is(err, errDirBudget) {
		return nil, &LimitError{Col: -1, Reason: fmt.Sprintf("the workbook's zip lists more than %d parts", lim.MaxParts)}
	}
	if err != nil {
		return nil, fmt.Errorf("open workbook: not a readable xlsx (zip) file: %w", err)
	}
	if len(zr.File) > lim.MaxParts {
		return nil, fmt.Errorf("open workbook: %w", &LimitError{Col: -1, Reason: fmt.Sprintf("the workbook's zip holds %d parts; the limit is %d", len(zr.File), lim.MaxParts)})
	}
	w := &Workbook{zr: zr, parts: make(map[string]*zip.File, len(zr.File)), lim: lim}
	for _, f := range zr.File {
		k := partKey(f.Name)
		if w.parts[k] != nil {
			// Readers differ on which of the two they take.
			return nil, fmt.Errorf("open workbook: the zip holds two parts named %q", f.Name)
		}
		w.parts[k] = f
	}
	if err := w.readStructure(); err != nil {
		var le *LimitError
		if errors.As(err, &le) || errors.Is(err, ErrTemp) {
			return nil, err // says where already
		}
		return nil, fmt.Errorf("open workbook: %w", err)
	}
	return w, nil
}

var errDirBudget = errors.New("zip directory over budget")

// dirBudget is a ReaderAt that fails once left bytes have been read; left
// < 0 is no limit.
type dirBudget struct {
	r    io.ReaderAt
	left int64
}

func (d *dirBudget) ReadAt(p []byte, off int64) (int, error) {
	if d.left >= 0 {
		if int64(len(p)) > d.left {
			return 0, errDirBudget
		}
		d.left -= int64(len(p))
	}
	return d.r.ReadAt(p, off)
}

// Close releases the temporary files of a large shared-string table. Rows
// opened from the workbook must not be read after it. It is idempotent.
func (w *Workbook) Close() error {
	sst := w.sst
	w.sst = nil
	return sst.close()
}

// Sheets returns the workbook's sheets in workbook order.
func (w *Workbook) Sheets() []Sheet { return append([]Sheet(nil), w.sheets...) }

// Date1904 reports whether serial dates count from 1904 rather than 1900.
func (w *Workbook) Date1904() bool { return w.date1904 }

// partKey normalises a part name for lookup: OPC part names are
// case-insensitive, and some producers write backslashes.
func partKey(name string) string {
	return strings.ToLower(strings.TrimPrefix(strings.ReplaceAll(name, `\`, "/"), "/"))
}

// maxAttr bounds the attribute values kept from structure parts: sheet
// names (Excel allows 31 characters), relationship ids, types and targets.
const maxAttr = 1024

func (w *Workbook) readStructure() error {
	main := "xl/workbook.xml"
	if _, err := w.walk("_rels/.rels", func(t token, depth int, _ string) error {
		if depth != 1 || string(t.name) != "Relationship" {
			return nil
		}
		v, err := attrs(t, maxAttr, "Type", "Target")
		if err != nil {
			return fmt.Errorf("read _rels/.rels: %w", err)
		}
		if strings.HasSuffix(v[0], "/officeDocument") {
			main = resolve("", v[1])
		}
		return nil
	}); err != nil {
		return err
	}
	var rids []string
	found, err := w.walk(main, func(t token, depth int, parent string) error {
		switch {
		case depth == 1 && string(t.name) == "workbookPr":
			v, err := attrs(t, maxAttr, "date1904")
			if err != nil {
				return fmt.Errorf("read %s: %w", main, err)
			}
			w.date1904 = isTrue(v[0])
		case depth == 2 && parent == "sheets" && string(t.name) == "sheet":
			if len(w.sheets) >= w.lim.MaxSheets {
				return overPart(main, "the workbook lists more than %d sheets", w.lim.MaxSheets)
			}
			v, err := attrs(t, maxAttr, "name", "state", "id")
			if err != nil {
				return fmt.Errorf("read %s: %w", main, err)
			}
			w.sheets = append(w.sheets, Sheet{Name: v[0], Hidden: v[1] == "hidden" || v[1] == "veryHidden"})
			rids = append(rids, v[2])
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("no %s: not a spreadsheet", main)
	}
	if len(w.sheets) == 0 {
		return fmt.Errorf("%s lists no sheets", main)
	}
	// Only the targets of the listed sheets are kept, so that a part of
	// a million relationships costs nothing.
	wanted := make(map[string]bool, len(rids))
	for _, id := range rids {
		wanted[id] = true
	}
	targets := make(map[string]string, len(rids))
	dir := path.Dir(main)
	sstPath, stylesPath := path.Join(dir, "sharedStrings.xml"), path.Join(dir, "styles.xml")
	relsName := path.Join(dir, "_rels", path.Base(main)+".rels")
	if _, err := w.walk(relsName, func(t token, depth int, _ string) error {
		if depth != 1 || string(t.name) != "Relationship" {
			return nil
		}
		v, err := attrs(t, maxAttr, "Id", "Type", "Target", "TargetMode")
		if err != nil {
			return fmt.Errorf("read %s: %w", relsName, err)
		}
		if v[3] == "External" {
			return nil
		}
		target := resolve(dir, v[2])
		switch {
		case wanted[v[0]]:
			targets[v[0]] = target
		case strings.HasSuffix(v[1], "/sharedStrings"):
			sstPath = target
		case strings.HasSuffix(v[1], "/styles"):
			stylesPath = target
		}
		return nil
	}); err != nil {
		return err
	}
	for _, id := range rids {
		w.paths = append(w.paths, targets[id])
	}
	if w.styles, err = w.readStyles(stylesPath); err != nil {
		return err
	}
	w.sst, err = w.readSharedStrings(sstPath)
	return err
}

// resolve turns a relationship target into a part name: absolute targets
// start at the package root, others at the source part's folder.
func resolve(dir, target string) string {
	target = strings.ReplaceAll(target, `\`, "/")
	if strings.HasPrefix(target, "/") {
		return path.Clean(target[1:])
	}
	return strings.TrimPrefix(path.Clean(path.Join(dir, target)), "/")
}

func isTrue(s string) bool { return s == "1" || s == "true" }

// open opens the part called name; it returns nil, nil when it is absent.
func (w *Workbook) open(name string, max int64) (io.ReadCloser, error) {
	f := w.parts[partKey(name)]
	if f == nil {
		return nil, nil
	}
	return openPart(f, max, w.lim)
}
