package xlsx

import (
	"archive/zip"
	"encoding/xml"
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
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("open workbook: not a readable xlsx (zip) file: %w", err)
	}
	w := &Workbook{zr: zr, parts: make(map[string]*zip.File, len(zr.File)), lim: lim.withDefaults()}
	for _, f := range zr.File {
		w.parts[partKey(f.Name)] = f
	}
	if err := w.readStructure(); err != nil {
		return nil, fmt.Errorf("open workbook: %w", err)
	}
	return w, nil
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

type xmlRels struct {
	Rels []struct {
		ID     string `xml:"Id,attr"`
		Type   string `xml:"Type,attr"`
		Target string `xml:"Target,attr"`
		Mode   string `xml:"TargetMode,attr"`
	} `xml:"Relationship"`
}

type xmlWorkbook struct {
	Pr struct {
		Date1904 string `xml:"date1904,attr"`
	} `xml:"workbookPr"`
	Sheets []struct {
		Name  string `xml:"name,attr"`
		State string `xml:"state,attr"`
		RID   string `xml:"id,attr"`
	} `xml:"sheets>sheet"`
}

func (w *Workbook) readStructure() error {
	main := "xl/workbook.xml"
	var root xmlRels
	if ok, err := w.decode("_rels/.rels", &root); err != nil {
		return err
	} else if ok {
		for _, r := range root.Rels {
			if strings.HasSuffix(r.Type, "/officeDocument") {
				main = resolve("", r.Target)
			}
		}
	}
	var wb xmlWorkbook
	if ok, err := w.decode(main, &wb); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("no %s: not a spreadsheet", main)
	}
	w.date1904 = isTrue(wb.Pr.Date1904)
	var rels xmlRels
	relsName := path.Join(path.Dir(main), "_rels", path.Base(main)+".rels")
	if _, err := w.decode(relsName, &rels); err != nil {
		return err
	}
	targets := make(map[string]string, len(rels.Rels))
	sstPath, stylesPath := path.Join(path.Dir(main), "sharedStrings.xml"), path.Join(path.Dir(main), "styles.xml")
	for _, r := range rels.Rels {
		if r.Mode == "External" {
			continue
		}
		t := resolve(path.Dir(main), r.Target)
		targets[r.ID] = t
		switch {
		case strings.HasSuffix(r.Type, "/sharedStrings"):
			sstPath = t
		case strings.HasSuffix(r.Type, "/styles"):
			stylesPath = t
		}
	}
	for _, s := range wb.Sheets {
		w.sheets = append(w.sheets, Sheet{Name: s.Name, Hidden: s.State == "hidden" || s.State == "veryHidden"})
		w.paths = append(w.paths, targets[s.RID])
	}
	if len(w.sheets) == 0 {
		return fmt.Errorf("%s lists no sheets", main)
	}
	var err error
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

// decode unmarshals a small part; ok is false when the part is absent.
func (w *Workbook) decode(name string, v any) (ok bool, err error) {
	rc, err := w.open(name, w.lim.MaxPart)
	if rc == nil || err != nil {
		return false, err
	}
	defer rc.Close()
	if err := xml.NewDecoder(rc).Decode(v); err != nil {
		return false, fmt.Errorf("read %s: %w", name, err)
	}
	return true, nil
}

// open opens the part called name; it returns nil, nil when it is absent.
func (w *Workbook) open(name string, max int64) (io.ReadCloser, error) {
	f := w.parts[partKey(name)]
	if f == nil {
		return nil, nil
	}
	return openPart(f, max, w.lim)
}
