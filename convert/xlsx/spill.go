package xlsx

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"sync"
)

// A shared-string table past Limits.SharedInMemory lives in two temporary
// files: the items' text back to back, and the end offset of each item as
// a little-endian uint32. Both are removed as soon as they are made, so
// they vanish with their descriptors, even after a crash. Reads go through
// a block of each file cached in memory: cells mostly take their strings
// in table order, so most lookups are served from the cache.

const (
	endsBlock = 4096     // offsets read at once: 16 KiB
	textBlock = 64 << 10 // text read at once
)

// spilled is a shared-string table on disk. It is safe for concurrent use:
// several Rows of one Workbook may read it.
type spilled struct {
	text, ends *os.File
	n          int // items

	mu      sync.Mutex
	endsAt  int // index of the first offset in endsBuf
	endsBuf []uint32
	raw     []byte
	textAt  int64
	textBuf []byte
}

// spillWriter appends items to a spilled table while it is read.
type spillWriter struct {
	d     *spilled
	text  *bufio.Writer
	ends  *bufio.Writer
	at    int64 // bytes of text written
	entry [4]byte
}

// spill starts a table on disk in temporary files in dir, and returns it
// and the writer that appends to it.
func spill(dir string) (*spilled, *spillWriter, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	d := &spilled{}
	var err error
	if d.text, err = tempFile(dir); err != nil {
		return nil, nil, err
	}
	if d.ends, err = tempFile(dir); err != nil {
		d.text.Close()
		return nil, nil, err
	}
	w := &spillWriter{d: d, text: bufio.NewWriterSize(d.text, 64<<10), ends: bufio.NewWriterSize(d.ends, 16<<10)}
	return d, w, nil
}

func tempFile(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, ".usagedrop-sst-*")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTemp, err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %w", ErrTemp, err)
	}
	return f, nil
}

func (w *spillWriter) add(item []byte) error {
	if w.at+int64(len(item)) > 1<<32-1 {
		return &LimitError{Col: -1, Reason: "the shared strings exceed 4 GiB"}
	}
	if _, err := w.text.Write(item); err != nil {
		return fmt.Errorf("%w: %w", ErrTemp, err)
	}
	w.at += int64(len(item))
	binary.LittleEndian.PutUint32(w.entry[:], uint32(w.at))
	if _, err := w.ends.Write(w.entry[:]); err != nil {
		return fmt.Errorf("%w: %w", ErrTemp, err)
	}
	w.d.n++
	return nil
}

func (w *spillWriter) flush() error {
	if err := w.text.Flush(); err != nil {
		return fmt.Errorf("%w: %w", ErrTemp, err)
	}
	if err := w.ends.Flush(); err != nil {
		return fmt.Errorf("%w: %w", ErrTemp, err)
	}
	w.d.endsAt = -1
	return nil
}

func (d *spilled) close() error {
	err := d.text.Close()
	if err2 := d.ends.Close(); err == nil {
		err = err2
	}
	return err
}

// lookup is sharedStrings.lookup for a table on disk.
func (d *spilled) lookup(i, max int) (string, int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var start uint32
	if i > 0 {
		s, err := d.end(i - 1)
		if err != nil {
			return "", 0, err
		}
		start = s
	}
	end, err := d.end(i)
	if err != nil {
		return "", 0, err
	}
	if end < start {
		return "", 0, fmt.Errorf("%w: the offsets of shared string %d are damaged", ErrTemp, i)
	}
	n := int(end - start)
	if n > max {
		return "", n, nil
	}
	from := int64(start)
	if from < d.textAt || int64(end) > d.textAt+int64(len(d.textBuf)) {
		if n > textBlock {
			b := make([]byte, n)
			if _, err := d.text.ReadAt(b, from); err != nil {
				return "", 0, fmt.Errorf("%w: %w", ErrTemp, err)
			}
			return string(b), n, nil
		}
		if d.textBuf == nil {
			d.textBuf = make([]byte, textBlock)
		}
		m, err := d.text.ReadAt(d.textBuf[:cap(d.textBuf)], from)
		if m < n {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			d.textBuf = d.textBuf[:0]
			return "", 0, fmt.Errorf("%w: %w", ErrTemp, err)
		}
		d.textAt, d.textBuf = from, d.textBuf[:m]
	}
	off := int(from - d.textAt)
	return string(d.textBuf[off : off+n]), n, nil
}

// end returns the end offset of item i, through the cached block.
func (d *spilled) end(i int) (uint32, error) {
	if d.endsAt < 0 || i < d.endsAt || i >= d.endsAt+len(d.endsBuf) {
		at := i - i%endsBlock
		if d.raw == nil {
			d.raw = make([]byte, 4*endsBlock)
			d.endsBuf = make([]uint32, 0, endsBlock)
		}
		m, err := d.ends.ReadAt(d.raw, int64(at)*4)
		if m/4 <= i-at {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			d.endsAt = -1
			return 0, fmt.Errorf("%w: %w", ErrTemp, err)
		}
		d.endsBuf = d.endsBuf[:m/4]
		for k := range d.endsBuf {
			d.endsBuf[k] = binary.LittleEndian.Uint32(d.raw[4*k:])
		}
		d.endsAt = at
	}
	return d.endsBuf[i-d.endsAt], nil
}
