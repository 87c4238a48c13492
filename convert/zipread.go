package convert

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// ratioFloor is the size under which a zip entry may compress as well as
// it likes: Caps.MaxZipRatio applies above it. What a zip may expand to is
// in Caps: a zip bomb is refused from its directory when it declares too
// much, and while streaming when it lies: no member yields more bytes than
// it declared.
const ratioFloor = 1 << 20

// dirBytesPerEntry is the central directory a zip may have per entry it
// is allowed (Caps.MaxZipEntries): 4 KiB is room for a long path; the
// directory is what archive/zip holds in memory, name by name.
const dirBytesPerEntry = 4 << 10

// checkDirectory reads a zip's end-of-central-directory record, and its
// zip64 record when there is one, and refuses an archive that declares
// more entries, or a larger directory, than the caps allow. It runs before
// archive/zip reads the directory, which costs memory for every entry it
// lists. An archive whose records cannot be found is left to archive/zip
// to call damaged.
func checkDirectory(r io.ReaderAt, size int64, c *Caps, what string) error {
	tail := make([]byte, min(size, 22+65535))
	if _, err := r.ReadAt(tail, size-int64(len(tail))); err != nil && err != io.EOF {
		return fmt.Errorf("read zip directory: %w", err)
	}
	i := bytes.LastIndex(tail, []byte("PK\x05\x06"))
	if i < 0 || len(tail)-i < 22 {
		return nil
	}
	eocd := tail[i:]
	entries := uint64(binary.LittleEndian.Uint16(eocd[10:]))
	dir := uint64(binary.LittleEndian.Uint32(eocd[12:]))
	if entries == 0xFFFF || dir == 0xFFFFFFFF {
		entries, dir = zip64Directory(r, size-int64(len(tail))+int64(i), entries, dir)
	}
	if entries > uint64(c.MaxZipEntries) {
		return rejectHint(fmt.Sprintf("limits.max_zip_entries is %d", c.MaxZipEntries),
			"the %s holds %d entries, more than the %d usagedrop accepts; put fewer files in one zip", what, entries, c.MaxZipEntries)
	}
	if limit := uint64(c.MaxZipEntries) * dirBytesPerEntry; dir > limit {
		return rejectHint(fmt.Sprintf("%d bytes for each of limits.max_zip_entries (%d)", dirBytesPerEntry, c.MaxZipEntries),
			"the %s's list of entries is %d bytes, more than the %d usagedrop reads; are its names unusually long?", what, dir, limit)
	}
	return nil
}

// zip64Directory reads the zip64 end record whose locator stands just
// before the end record at eocd; it returns entries and dir unchanged when
// there is none.
func zip64Directory(r io.ReaderAt, eocd int64, entries, dir uint64) (uint64, uint64) {
	var loc [20]byte
	if eocd < 20 {
		return entries, dir
	}
	if _, err := r.ReadAt(loc[:], eocd-20); err != nil || !bytes.Equal(loc[:4], []byte("PK\x06\x07")) {
		return entries, dir
	}
	var rec [56]byte
	at := int64(binary.LittleEndian.Uint64(loc[8:]))
	if at < 0 || at > eocd {
		return entries, dir
	}
	if _, err := r.ReadAt(rec[:], at); err != nil || !bytes.Equal(rec[:4], []byte("PK\x06\x06")) {
		return entries, dir
	}
	return binary.LittleEndian.Uint64(rec[32:]), binary.LittleEndian.Uint64(rec[40:])
}

// zipNames lists the entries of a zip, for format detection.
func zipNames(r io.ReaderAt, size int64) (map[string]bool, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, err
	}
	names := make(map[string]bool, len(zr.File))
	for _, f := range zr.File {
		names[f.Name] = true
	}
	return names, nil
}

// usageMember says whether a zip entry is read, skipped, or refused.
func usageMember(f *zip.File) (read bool, err error) {
	name := strings.ReplaceAll(f.Name, `\`, "/")
	base := memberName(name)
	switch {
	case name == "" || strings.HasPrefix(name, "/") || (len(name) > 1 && name[1] == ':'):
		return false, reject("the zip entry %q has an absolute path; refusing the archive", f.Name)
	case hasDotDot(name):
		return false, reject("the zip entry %q points outside the archive; refusing the archive", f.Name)
	case f.Mode()&os.ModeSymlink != 0:
		return false, reject("the zip entry %q is a symbolic link; refusing the archive", f.Name)
	case f.Flags&0x1 != 0:
		return false, reject("the zip entry %q is encrypted; zip it again without a password", f.Name)
	case strings.HasSuffix(name, "/") || f.Mode().IsDir():
		return false, nil // directories are flattened away
	case strings.HasPrefix(name, "__MACOSX/") || strings.HasPrefix(base, "."):
		return false, nil // macOS resource forks and hidden files are not usage
	}
	switch ext := strings.ToLower(path.Ext(base)); {
	case textExts[ext], ext == ".xlsx", ext == ".xlsm":
	case ext == ".zip":
		return false, reject("the zip entry %q is itself an archive; put the usage files in one zip, not nested", f.Name)
	default:
		return false, reject("the zip entry %q is not a usage file (.csv, .txt or .xlsx)", f.Name)
	}
	if f.Method != zip.Store && f.Method != zip.Deflate {
		return false, reject("the zip entry %q uses compression method %d; zip it again with standard compression", f.Name, f.Method)
	}
	return true, nil
}

func hasDotDot(name string) bool {
	for _, p := range strings.Split(name, "/") {
		if p == ".." {
			return true
		}
	}
	return false
}

// checkDeclared refuses an archive whose directory already declares a bomb.
func checkDeclared(files []*zip.File, c *Caps) error {
	if len(files) > c.MaxZipEntries {
		return rejectHint(fmt.Sprintf("limits.max_zip_entries is %d", c.MaxZipEntries),
			"the zip holds %d entries, more than the %d usagedrop accepts; put fewer files in one zip", len(files), c.MaxZipEntries)
	}
	var total uint64
	for _, f := range files {
		total += f.UncompressedSize64
		if total > uint64(c.MaxZipBytes) || total < f.UncompressedSize64 {
			return rejectHint(fmt.Sprintf("limits.max_zip_bytes is %d", c.MaxZipBytes),
				"the zip expands to more than %d bytes; refusing it as a possible zip bomb", c.MaxZipBytes)
		}
		if ratio := f.UncompressedSize64 / max(f.CompressedSize64, 1); f.UncompressedSize64 > ratioFloor && ratio > uint64(c.MaxZipRatio) {
			return rejectHint(fmt.Sprintf("limits.max_zip_ratio is %d", c.MaxZipRatio),
				"the zip entry %q expands %d times, more than the %d usagedrop accepts; refusing it as a possible zip bomb", f.Name, ratio, c.MaxZipRatio)
		}
	}
	return nil
}

// guard stops a member that yields more than its directory declared, while
// streaming, before the bytes are used.
type guard struct {
	r    io.ReadCloser
	n    uint64
	max  uint64
	name string
}

func (g *guard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	g.n += uint64(n)
	if g.n > g.max {
		return 0, reject("the zip entry %q expands beyond its declared size; refusing it as a possible zip bomb", g.name)
	}
	if errors.Is(err, zip.ErrFormat) {
		// archive/zip's own check: a read past the declared size fails here.
		return 0, reject("the zip entry %q is damaged or expands beyond its declared size; refusing it", g.name)
	}
	if err != nil && err != io.EOF {
		var corrupt flate.CorruptInputError
		if errors.Is(err, zip.ErrChecksum) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &corrupt) {
			return n, reject("the zip entry %q is damaged (%v)", g.name, err)
		}
	}
	return n, err
}

func (g *guard) Close() error { return g.r.Close() }

func memberStream(f *zip.File) streamOpener {
	return func() (io.ReadCloser, error) {
		rc, err := f.Open()
		if err != nil {
			return nil, reject("the zip entry %q cannot be opened (%v)", f.Name, err)
		}
		return &guard{r: rc, max: f.UncompressedSize64, name: f.Name}, nil
	}
}

// readZip reads every usage member of a dropped zip as part of one drop.
// The whole archive is checked before any member is read, so a refused
// archive yields no records.
func (rd *reader) readZip(r io.ReaderAt, size int64) error {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return reject("the zip file is damaged or incomplete (%v)", err)
	}
	if err := checkDeclared(zr.File, &rd.caps); err != nil {
		return err
	}
	var members []*zip.File
	for _, f := range zr.File {
		ok, err := usageMember(f)
		if err != nil {
			return err
		}
		if ok {
			members = append(members, f)
		}
	}
	if len(members) == 0 {
		return reject("the zip holds no usage files (.csv, .txt or .xlsx)")
	}
	for _, f := range members {
		name := memberName(f.Name)
		if err := rd.readMember(name, f); err != nil {
			return err
		}
	}
	return nil
}

// readMember reads one zip entry, a text file or a workbook.
func (rd *reader) readMember(name string, f *zip.File) error {
	u := unit{member: name}
	ext := strings.ToLower(path.Ext(name))
	if ext == ".xlsx" || ext == ".xlsm" {
		return rd.failed(u, rd.readWorkbookMember(name, f))
	}
	cu, err := csvUnit(name, memberStream(f), rd.opt, rd.over, &rd.bufs)
	if err != nil {
		return rd.failed(u, err)
	}
	return rd.readUnit(cu)
}

// readWorkbookMember gives a workbook inside a zip the random access it
// needs: a stored entry is read in place; a compressed one is inflated,
// under the guard, into a temporary file that is removed afterwards.
func (rd *reader) readWorkbookMember(name string, f *zip.File) error {
	if f.Method == zip.Store {
		raw, err := f.OpenRaw()
		if err != nil {
			return reject("the zip entry %q cannot be opened (%v)", f.Name, err)
		}
		if ra, ok := raw.(io.ReaderAt); ok {
			return rd.readWorkbook(name, ra, int64(f.UncompressedSize64))
		}
	}
	tmp, err := os.CreateTemp(rd.tmpDir, ".usagedrop-member-*.tmp")
	if err != nil {
		return fmt.Errorf("inflate %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	rc, err := memberStream(f)()
	if err != nil {
		return err
	}
	defer rc.Close()
	n, err := io.Copy(tmp, rc)
	if err != nil {
		if _, ok := asRejected(err); ok {
			return err
		}
		return fmt.Errorf("inflate %s: %w", name, err)
	}
	return rd.readWorkbook(name, tmp, n)
}
