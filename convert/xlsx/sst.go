package xlsx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unsafe"
)

// sharedStrings is the shared-string table. A small one is held compactly
// in memory: all text in one string and the end offset of each item, so a
// million strings cost their bytes plus 4 bytes each rather than a string
// header and an allocation each, and cells take substrings of text without
// copying. Past Limits.SharedInMemory the rest of the table goes to disk
// (spilled), so that a workbook whose strings are all unique reads in the
// same memory as any other. The strings kept in memory are the first ones:
// producers number strings in order of first use, so the ones repeated
// on every row (units, products, header names) come first.
type sharedStrings struct {
	text string
	ends []uint32
	disk *spilled // items from len(ends) on, when the table is too large
}

// errNoString reports a shared-string index past the table's end.
var errNoString = errors.New("no such shared string")

func (s *sharedStrings) len() int {
	switch {
	case s == nil:
		return 0
	case s.disk != nil:
		return len(s.ends) + s.disk.n
	}
	return len(s.ends)
}

// lookup returns shared string i, and its length n in bytes. A string
// longer than max bytes is not read: s is "" and n says how long it is.
func (s *sharedStrings) lookup(i, max int) (str string, n int, err error) {
	if i < 0 || i >= s.len() {
		return "", 0, errNoString
	}
	if i >= len(s.ends) {
		return s.disk.lookup(i-len(s.ends), max)
	}
	start := uint32(0)
	if i > 0 {
		start = s.ends[i-1]
	}
	n = int(s.ends[i] - start)
	if n > max {
		return "", n, nil
	}
	return s.text[start:s.ends[i]], n, nil
}

func (s *sharedStrings) close() error {
	if s == nil || s.disk == nil {
		return nil
	}
	return s.disk.close()
}

// readSharedStrings streams the shared-string part; an absent part is an
// empty table.
func (w *Workbook) readSharedStrings(name string) (*sharedStrings, error) {
	rc, err := w.open(name, w.lim.MaxPart)
	if rc == nil || err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := startInflater(ctx, rc)
	defer src.close()
	// The text is shorter than the part, so reserving the part's declared
	// size (within what is held in memory) spares the copies of growing
	// it; pages never written are never resident.
	size := int(min(w.parts[partKey(name)].UncompressedSize64, uint64(w.lim.SharedInMemory)))
	sc := &sstScan{lim: w.lim, part: name}
	s, err := sc.scan(&window{src: src, part: name, max: w.lim.MaxElement}, size)
	if err != nil {
		if sc.disk != nil {
			sc.disk.close()
		}
		if errors.Is(err, ErrTemp) || errors.Is(err, ErrTooLarge) {
			return nil, err
		}
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return s, nil
}

// sstScan reads a shared-string part into memory, moving what it has read
// to disk once it passes the limit.
type sstScan struct {
	lim  Limits
	part string
	text []byte   // the text of the items in memory
	ends []uint32 // their end offsets in text
	item []byte   // after spilling, the current item's text
	disk *spilled
	w    *spillWriter
}

func (sc *sstScan) scan(win *window, size int) (*sharedStrings, error) {
	sc.text = make([]byte, 0, size)
	depth := 0
	for {
		t, p, err := lex(win.b, win.pos)
		if err == errShort {
			if err := win.fill(); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		switch {
		case t.kind == tokStart && string(t.name) == "sst" && depth == 0:
			if n := attrInt(t.attrs, "uniqueCount"); n > 0 && sc.ends == nil {
				sc.ends = make([]uint32, 0, min(n, size/len("<si/>"), int(sc.lim.SharedInMemory/4)))
			}
		case t.kind == tokStart && string(t.name) == "si" && !t.self:
			dst := &sc.text
			if sc.w != nil {
				dst = &sc.item
			}
			mark := len(*dst)
			*dst, p, err = appendRich(*dst, win.b, p, sc.lim.MaxDepth)
			if err == errShort {
				*dst = (*dst)[:mark]
				if err := win.fill(); err != nil {
					return nil, truncated(err)
				}
				continue // lex the <si> again with the whole item in view
			}
			if err != nil {
				return nil, fmt.Errorf("shared string %d: %w", sc.count(), err)
			}
			*dst = unescapeOOXML(*dst, mark)
		}
		switch {
		case t.kind == tokStart && string(t.name) == "si":
			if err := sc.add(); err != nil {
				return nil, err
			}
		case t.kind == tokStart && !t.self:
			if depth++; depth > sc.lim.MaxDepth {
				return nil, overPart(sc.part, "the part nests XML elements more than %d deep", sc.lim.MaxDepth)
			}
		case t.kind == tokEnd:
			depth--
		}
		win.pos = p
	}
	if sc.w != nil {
		if err := sc.w.flush(); err != nil {
			return nil, err
		}
	}
	// text is never written again, so the string may share its bytes.
	return &sharedStrings{text: unsafe.String(unsafe.SliceData(sc.text), len(sc.text)), ends: sc.ends, disk: sc.disk}, nil
}

func (sc *sstScan) count() int {
	if sc.disk != nil {
		return len(sc.ends) + sc.disk.n
	}
	return len(sc.ends)
}

// add ends the item just read: in memory while the table fits, else on
// disk.
func (sc *sstScan) add() error {
	if sc.w != nil {
		err := sc.w.add(sc.item)
		sc.item = sc.item[:0]
		return err
	}
	sc.ends = append(sc.ends, uint32(len(sc.text)))
	if int64(len(sc.text))+4*int64(len(sc.ends)) <= sc.lim.SharedInMemory {
		return nil
	}
	var err error
	sc.disk, sc.w, err = spill(sc.lim.TempDir)
	return err
}

// truncated turns the end of a part inside an element into a clear error.
func truncated(err error) error {
	if errors.Is(err, io.EOF) {
		return errors.New("the XML ends in the middle of an element: the file is truncated or damaged")
	}
	return err
}

// appendRich appends the text of a rich-text item (the content of <si> or
// <is>, from b[p:] to its end tag) to dst: the <t> runs, directly or in
// <r> runs, but not phonetic runs (<rPh>). It returns the position after
// the end tag. Elements nested deeper than maxDepth are an error.
func appendRich(dst, b []byte, p, maxDepth int) ([]byte, int, error) {
	depth, skipAt, inT := 0, 0, false
	for {
		t, q, err := lex(b, p)
		if err != nil {
			return dst, p, err
		}
		p = q
		switch t.kind {
		case tokStart:
			if t.self {
				continue
			}
			if depth++; depth > maxDepth {
				return dst, p, &LimitError{Col: -1, Reason: fmt.Sprintf("XML elements nest more than %d deep", maxDepth)}
			}
			switch {
			case skipAt > 0:
			case string(t.name) == "rPh":
				skipAt = depth
			case string(t.name) == "t":
				inT = true
			}
		case tokEnd:
			if depth == 0 {
				return dst, p, nil
			}
			if depth == skipAt {
				skipAt = 0
			}
			inT = false
			depth--
		case tokText:
			if inT && skipAt == 0 {
				if dst, err = appendText(dst, t.text); err != nil {
					return dst, p, err
				}
			}
		case tokCDATA:
			if inT && skipAt == 0 {
				dst = appendCDATA(dst, t.text)
			}
		}
	}
}

// attrInt returns the named attribute as a non-negative integer, or -1.
func attrInt(attrs []byte, name string) int {
	for i := 0; ; {
		k, v, next, ok := nextAttr(attrs, i)
		if !ok {
			return -1
		}
		if string(k) == name {
			n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil || n < 0 {
				return -1
			}
			return n
		}
		i = next
	}
}
