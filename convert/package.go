package convert

import (
	"archive/zip"
	"bufio"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"usagedrop/usage"
)

// partSuffixRoom is the room kept in a name for "-p123of123".
const partSuffixRoom = len("-p123of123")

// partModTime is the time stamped on zip entries: fixed, so the same drop
// packages to the same bytes and the same hashes.
var partModTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// names makes upload names for one drop: a readable stem from the dropped
// name, then the drop's id, then the part and extension.
type names struct {
	stem string // "finance-team-march-1a2b3c4d"
}

func newNames(dropped, id string, maxName int) (names, error) {
	id = safeName(id)
	if len(id) > 16 {
		id = id[:16]
	}
	if id == "" {
		return names{}, errors.New("package: empty drop id")
	}
	base := filepath.Base(strings.ReplaceAll(dropped, `\`, "/"))
	if i := strings.LastIndexByte(base, '.'); i > 0 {
		base = base[:i]
	}
	stem := safeName(strings.ToLower(base))
	room := maxName - len(".zip") - partSuffixRoom - 1 - len(id)
	if room < 1 {
		return names{}, fmt.Errorf("package: name limit %d leaves no room for drop id %q", maxName, id)
	}
	if len(stem) > room {
		stem = strings.TrimRight(stem[:room], "-._")
	}
	if stem == "" {
		stem = "usage"
	}
	return names{stem: stem + "-" + id}, nil
}

// safeName keeps [A-Za-z0-9._-], turning runs of anything else into one
// dash, so that Zuora and every filesystem accept the name.
func safeName(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			if !dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = true
			continue
		}
		b.WriteRune(r)
		dash = r == '-'
	}
	return strings.Trim(b.String(), "-._")
}

func (n names) single(ext string) string { return n.stem + ext }
func (n names) part(i, total int) string {
	return fmt.Sprintf("%s-p%dof%d.zip", n.stem, i+1, total)
}

// countWriter counts bytes on their way to w.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// staging holds the temporary files of one Convert in dir; everything it
// holds is removed unless it is committed.
type staging struct {
	dir   string
	temps []string
}

func (s *staging) create() (*os.File, error) {
	f, err := os.CreateTemp(s.dir, ".usagedrop-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("create temp in %s: %w", s.dir, err)
	}
	s.temps = append(s.temps, f.Name())
	return f, nil
}

// discard removes every temporary file; it is safe to call after commit.
func (s *staging) discard() {
	for _, p := range s.temps {
		os.Remove(p)
	}
	s.temps = nil
}

// closeSynced makes f's bytes durable before it is renamed into place.
func closeSynced(f *os.File) error {
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", f.Name(), err)
	}
	return nil
}

// commit renames the staged files to their names, then syncs the
// directory so the renames survive a crash.
func (s *staging) commit(parts []Part) error {
	for i := range parts {
		parts[i].Index = i
		final := filepath.Join(s.dir, parts[i].Name)
		if err := os.Rename(parts[i].Path, final); err != nil {
			return fmt.Errorf("rename %s: %w", final, err)
		}
		parts[i].Path = final
	}
	s.discard() // the template CSV behind a zip, and any other leftover
	d, err := os.Open(s.dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", s.dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", s.dir, err)
	}
	return nil
}

// convertFile is Convert.
func convertFile(ctx context.Context, name, id string, r io.ReaderAt, size int64, opt Options, t Template, lim Limits, dir string) (*Result, error) {
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = usage.MaxFileSize
	}
	if lim.MaxName <= 0 {
		lim.MaxName = usage.MaxNameLen
	}
	nm, err := newNames(name, id, lim.MaxName)
	if err != nil {
		return nil, err
	}
	st := &staging{dir: dir}
	defer st.discard()
	csvFile, err := st.create()
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(csvFile, h)}
	sum, err := writeTemplate(ctx, name, r, size, opt, t, cw, dir)
	if err != nil {
		csvFile.Close()
		return nil, err
	}
	res := &Result{Summary: sum}
	if sum.Rejected() {
		csvFile.Close()
		return res, nil
	}
	if err := closeSynced(csvFile); err != nil {
		return nil, err
	}
	whole := Part{Name: nm.single(".csv"), Path: csvFile.Name(), Size: cw.n, SHA256: hex.EncodeToString(h.Sum(nil)), Records: sum.Records}
	if cw.n <= lim.MaxBytes {
		res.Parts = []Part{whole}
	} else if res.Parts, err = packZips(ctx, st, nm, whole, lim.MaxBytes); err != nil {
		return nil, err
	}
	if err := st.commit(res.Parts); err != nil {
		return nil, err
	}
	return res, nil
}

// packZips zips an oversized template CSV as one entry, and splits it on
// row boundaries only when that zip is still over the cap.
func packZips(ctx context.Context, st *staging, nm names, whole Part, maxBytes int64) ([]Part, error) {
	one, fits, err := zipWhole(st, nm, whole, maxBytes)
	if err != nil {
		return nil, err
	}
	if fits {
		return []Part{one}, nil
	}
	parts, err := splitZips(ctx, st, nm, whole, maxBytes)
	if err != nil {
		return nil, err
	}
	for i := range parts {
		parts[i].Name = nm.part(i, len(parts))
	}
	return parts, nil
}

// zipWhole writes the template CSV as the single entry of a zip. It gives
// up (fits false) as soon as the compressed bytes pass maxBytes, so that a
// drop that must be split is not compressed in full twice.
func zipWhole(st *staging, nm names, whole Part, maxBytes int64) (p Part, fits bool, err error) {
	src, err := os.Open(whole.Path)
	if err != nil {
		return Part{}, false, fmt.Errorf("open %s: %w", whole.Path, err)
	}
	defer src.Close()
	pz, err := newPartZip(st, nm.single(".csv"))
	if err != nil {
		return Part{}, false, err
	}
	buf := make([]byte, 256<<10)
	for {
		n, rerr := src.Read(buf)
		if _, err := pz.entry.Write(buf[:n]); err != nil {
			pz.f.Close()
			return Part{}, false, fmt.Errorf("zip %s: %w", whole.Path, err)
		}
		if pz.size() > maxBytes {
			pz.f.Close()
			return Part{}, false, nil
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			pz.f.Close()
			return Part{}, false, fmt.Errorf("read %s: %w", whole.Path, rerr)
		}
	}
	p, err = pz.finish()
	p.Name, p.Records = nm.single(".zip"), whole.Records
	return p, err == nil && p.Size <= maxBytes, err
}

// partZip is one zip being written, with its deflate stream in reach so
// that the packer can flush it and know exactly how many compressed bytes
// the part holds so far.
type partZip struct {
	f     *os.File
	h     hash.Hash
	out   *countWriter // all bytes of the zip file
	zw    *zip.Writer
	fw    *flate.Writer
	comp  *countWriter // compressed bytes of the entry
	entry io.Writer
	head  int64 // bytes of zip structure around the entry
}

func newPartZip(st *staging, entry string) (*partZip, error) {
	f, err := st.create()
	if err != nil {
		return nil, err
	}
	pz := &partZip{f: f, h: sha256.New()}
	pz.out = &countWriter{w: io.MultiWriter(f, pz.h)}
	pz.zw = zip.NewWriter(pz.out)
	pz.zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		pz.comp = &countWriter{w: w}
		fw, err := flate.NewWriter(pz.comp, flate.DefaultCompression)
		pz.fw = fw
		return fw, err
	})
	pz.entry, err = pz.zw.CreateHeader(&zip.FileHeader{Name: entry, Method: zip.Deflate, Modified: partModTime})
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("zip %s: %w", entry, err)
	}
	// local header, data descriptor (zip64 size), central directory entry,
	// end of central directory (zip64 records too, to be safe).
	pz.head = int64(30+len(entry)+24+46+len(entry)+22) + 56 + 20 + 28
	return pz, nil
}

// size is an upper bound on the zip's size if finished now, after a flush.
func (pz *partZip) size() int64 { return pz.comp.n + pz.head }

func (pz *partZip) finish() (Part, error) {
	if err := pz.zw.Close(); err != nil {
		pz.f.Close()
		return Part{}, fmt.Errorf("zip %s: %w", pz.f.Name(), err)
	}
	if err := closeSynced(pz.f); err != nil {
		return Part{}, err
	}
	return Part{Path: pz.f.Name(), Size: pz.out.n, SHA256: hex.EncodeToString(pz.h.Sum(nil))}, nil
}

// deflateBound is the most n bytes can grow to in a flushed deflate stream:
// stored blocks of at most 65535 bytes with 5 bytes of header each, plus
// the flush's empty block.
func deflateBound(n int64) int64 { return n + 5*(n/65535+1) + 10 }

// splitZips cuts the template CSV into zips each as full as maxBytes
// allows. Rows are fed in chunks that fit the room left even if they did
// not compress at all; after each chunk the stream is flushed and measured,
// so a part never exceeds the cap and ends within one row of it.
func splitZips(ctx context.Context, st *staging, nm names, whole Part, maxBytes int64) ([]Part, error) {
	src, err := os.Open(whole.Path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", whole.Path, err)
	}
	defer src.Close()
	rows := &rowScanner{r: bufio.NewReaderSize(src, 256<<10)}
	header, err := rows.next()
	if err != nil {
		return nil, fmt.Errorf("split %s: %w", whole.Path, err)
	}
	header = append([]byte(nil), header...)
	row, err := rows.next()
	var parts []Part
	for err == nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		var p Part
		p, row, err = fillPart(st, fmt.Sprintf("%s-p%d.csv", nm.stem, len(parts)+1), header, row, rows, maxBytes)
		if p.Path != "" {
			parts = append(parts, p)
		}
	}
	if err != io.EOF {
		return nil, err
	}
	return parts, nil
}

// fillPart writes header and rows, starting with row, into one zip until
// the next row might not fit. It returns the first row left over.
func fillPart(st *staging, entry string, header, row []byte, rows *rowScanner, maxBytes int64) (Part, []byte, error) {
	pz, err := newPartZip(st, entry)
	if err != nil {
		return Part{}, nil, err
	}
	fail := func(err error) (Part, []byte, error) { pz.f.Close(); return Part{}, nil, err }
	if _, err := pz.entry.Write(header); err != nil {
		return fail(err)
	}
	records := 0
	for {
		if err := pz.fw.Flush(); err != nil {
			return fail(err)
		}
		room := maxBytes - pz.size()
		var chunk int64
		for err == nil && deflateBound(chunk+int64(len(row))) <= room {
			if _, werr := pz.entry.Write(row); werr != nil {
				return fail(werr)
			}
			chunk += int64(len(row))
			records++
			row, err = rows.next()
		}
		if err != nil && err != io.EOF {
			return fail(err)
		}
		if chunk == 0 || err == io.EOF {
			break
		}
	}
	if records == 0 {
		return fail(fmt.Errorf("split: a row of %d bytes does not fit in an upload of %d bytes", len(row), maxBytes))
	}
	p, ferr := pz.finish()
	p.Records = records
	if ferr == nil && p.Size > maxBytes {
		ferr = fmt.Errorf("split: part of %d bytes exceeds the cap of %d", p.Size, maxBytes)
	}
	if ferr != nil {
		return Part{}, nil, ferr
	}
	return p, row, err
}

// rowScanner yields the rows of our own template CSV with their line ends.
// A row ends at a line end outside quotes; quoted values may hold line
// breaks.
type rowScanner struct {
	r   *bufio.Reader
	buf []byte
}

// next returns the next row, valid until the following call, or io.EOF.
func (s *rowScanner) next() ([]byte, error) {
	s.buf = s.buf[:0]
	quoted := false
	for {
		line, err := s.r.ReadSlice('\n')
		s.buf = append(s.buf, line...)
		for _, c := range line {
			if c == '"' {
				quoted = !quoted
			}
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && len(s.buf) == 0:
			return nil, io.EOF
		case err == io.EOF:
			return s.buf, nil
		case err != nil:
			return nil, err
		case !quoted:
			return s.buf, nil
		}
	}
}
