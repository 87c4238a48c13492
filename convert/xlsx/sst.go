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

// sharedStrings is the shared-string table held compactly: all text in
// one string and the end offset of each item, so a million strings cost
// their bytes plus 4 bytes each rather than a string header and an
// allocation each. Cells take substrings of text without copying.
type sharedStrings struct {
	text string
	ends []uint32
}

func (s *sharedStrings) len() int {
	if s == nil {
		return 0
	}
	return len(s.ends)
}

func (s *sharedStrings) get(i int) (string, bool) {
	if i < 0 || i >= s.len() {
		return "", false
	}
	start := uint32(0)
	if i > 0 {
		start = s.ends[i-1]
	}
	return s.text[start:s.ends[i]], true
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
	// size (within MaxPart) spares the copies of growing it; pages never
	// written are never resident.
	size := int(min(w.parts[partKey(name)].UncompressedSize64, uint64(w.lim.MaxPart)))
	s, err := scanSharedStrings(&window{src: src}, size)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return s, nil
}

func scanSharedStrings(win *window, size int) (*sharedStrings, error) {
	text := make([]byte, 0, size)
	var ends []uint32
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
		case t.kind == tokStart && string(t.name) == "sst":
			if n := attrInt(t.attrs, "uniqueCount"); n > 0 && ends == nil {
				ends = make([]uint32, 0, min(n, size/len("<si/>")))
			}
		case t.kind == tokStart && string(t.name) == "si" && !t.self:
			mark := len(text)
			text, p, err = appendRich(text, win.b, p)
			if err == errShort {
				text = text[:mark]
				if err := win.fill(); err != nil {
					return nil, truncated(err)
				}
				continue // lex the <si> again with the whole item in view
			}
			if err != nil {
				return nil, fmt.Errorf("shared string %d: %w", len(ends), err)
			}
			text = unescapeOOXML(text, mark)
		}
		if t.kind == tokStart && string(t.name) == "si" {
			if len(text) > 1<<32-1 {
				return nil, errors.New("shared strings exceed 4 GiB")
			}
			ends = append(ends, uint32(len(text)))
		}
		win.pos = p
	}
	// text is never written again, so the string may share its bytes.
	return &sharedStrings{text: unsafe.String(unsafe.SliceData(text), len(text)), ends: ends}, nil
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
// the end tag.
func appendRich(dst, b []byte, p int) ([]byte, int, error) {
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
			depth++
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
