package xlsx

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// The structure parts (relationships, workbook, styles) are small and read
// once, but they are a stranger's XML like the sheets, so they go through
// the same lexer and window: no element longer than Limits.MaxElement, no
// nesting deeper than Limits.MaxDepth, nothing held but what the callback
// keeps. encoding/xml holds every attribute of a tag and every open
// element, which a 60 KB part can make gigabytes.

// maxName bounds the names we keep of open elements; longer ones match
// nothing we look for.
const maxName = 64

// walk streams the part called name, calling fn with every start tag, its
// depth (the root is 0) and the local name of its parent when the parent is
// at depth 0 or 1. It stops at the end of the root element. found is false,
// with no error, when the part is absent.
func (w *Workbook) walk(name string, fn func(t token, depth int, parent string) error) (found bool, err error) {
	rc, err := w.open(name, w.lim.MaxPart)
	if rc == nil || err != nil {
		return false, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := startInflater(ctx, rc)
	defer src.close()
	win := &window{src: src, part: name, max: w.lim.MaxElement}
	depth, seen := 0, false
	var open [2]string // names of the open elements at depths 0 and 1
	for {
		t, p, err := lex(win.b, win.pos)
		if err == errShort {
			if err := win.fill(); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return true, err
			}
			continue
		}
		if err != nil {
			return true, fmt.Errorf("read %s: %w", name, err)
		}
		win.pos = p
		switch t.kind {
		case tokStart:
			seen = true
			parent := ""
			if depth > 0 && depth <= len(open) {
				parent = open[depth-1]
			}
			if err := fn(t, depth, parent); err != nil {
				return true, err
			}
			if t.self {
				if depth == 0 {
					return true, nil
				}
				continue
			}
			if depth >= w.lim.MaxDepth {
				return true, overPart(name, "the part nests XML elements more than %d deep", w.lim.MaxDepth)
			}
			if depth < len(open) {
				open[depth] = ""
				if len(t.name) <= maxName {
					open[depth] = string(t.name)
				}
			}
			depth++
		case tokEnd:
			if depth == 0 {
				return true, fmt.Errorf("read %s: unexpected </%s>", name, clip(t.name, maxName))
			}
			if depth--; depth == 0 {
				return true, nil
			}
		}
	}
	if !seen {
		return true, fmt.Errorf("read %s: the part holds no XML element", name)
	}
	return true, fmt.Errorf("read %s: %w", name, truncated(io.EOF))
}

// attrs returns the values of the named attributes of a start tag, with
// entities decoded; an absent one is "". A value longer than max bytes is
// an error, since every one we read is a name, a number or a path.
func attrs(t token, max int, names ...string) ([]string, error) {
	vals := make([]string, len(names))
	for i := 0; ; {
		k, v, next, ok := nextAttr(t.attrs, i)
		if !ok {
			return vals, nil
		}
		i = next
		for j, n := range names {
			if string(k) != n {
				continue
			}
			if len(v) > max {
				return nil, fmt.Errorf("attribute %s of <%s> is longer than %d bytes", n, clip(t.name, maxName), max)
			}
			b, err := appendText(nil, v)
			if err != nil {
				return nil, fmt.Errorf("attribute %s of <%s>: %w", n, clip(t.name, maxName), err)
			}
			vals[j] = string(b)
		}
	}
}
