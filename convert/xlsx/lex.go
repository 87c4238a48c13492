package xlsx

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// The lexer below reads just enough XML for worksheet and shared-string
// parts, over a byte window that a caller refills: encoding/xml allocates per
// token and is several times slower than inflating the part.

// errShort reports that the window ends inside a token; the caller refills
// and lexes again from the same position.
var errShort = errors.New("xlsx: token runs past the buffer")

type tokKind uint8

const (
	tokText  tokKind = iota // character data, raw: entities not decoded
	tokStart                // <name attrs> or <name attrs/>
	tokEnd                  // </name>
	tokCDATA                // <![CDATA[text]]>
	tokSkip                 // comment, processing instruction, declaration
)

type token struct {
	kind  tokKind
	self  bool   // start tag closed by "/>"
	name  []byte // local name (namespace prefix dropped) of a start or end tag
	attrs []byte // of a start tag: the bytes between its name and its end
	text  []byte // raw text of a text or CDATA token
}

// lex reads the token at b[p:] and returns it with the position after it. A
// text token is complete only once the '<' that ends it is in b.
func lex(b []byte, p int) (token, int, error) {
	if p >= len(b) {
		return token{}, p, errShort
	}
	if b[p] != '<' {
		i := bytes.IndexByte(b[p:], '<')
		if i < 0 {
			return token{}, p, errShort
		}
		return token{kind: tokText, text: b[p : p+i]}, p + i, nil
	}
	if p+1 >= len(b) {
		return token{}, p, errShort
	}
	switch b[p+1] {
	case '/':
		i := bytes.IndexByte(b[p+2:], '>')
		if i < 0 {
			return token{}, p, errShort
		}
		name := trimSpaceRight(b[p+2 : p+2+i])
		return token{kind: tokEnd, name: localName(name)}, p + 3 + i, nil
	case '!':
		return lexBang(b, p)
	case '?':
		i := bytes.Index(b[p+2:], []byte("?>"))
		if i < 0 {
			return token{}, p, errShort
		}
		return token{kind: tokSkip}, p + 4 + i, nil
	}
	return lexStart(b, p)
}

func lexBang(b []byte, p int) (token, int, error) {
	rest := b[p:]
	switch {
	case bytes.HasPrefix(rest, []byte("<![CDATA[")):
		i := bytes.Index(rest[9:], []byte("]]>"))
		if i < 0 {
			return token{}, p, errShort
		}
		return token{kind: tokCDATA, text: rest[9 : 9+i]}, p + 12 + i, nil
	case bytes.HasPrefix(rest, []byte("<!--")):
		i := bytes.Index(rest[4:], []byte("-->"))
		if i < 0 {
			return token{}, p, errShort
		}
		return token{kind: tokSkip}, p + 7 + i, nil
	case len(rest) < 9:
		return token{}, p, errShort
	case bytes.HasPrefix(rest, []byte("<!DOCTYPE")):
		i := bytes.IndexByte(rest, '>')
		if i < 0 {
			return token{}, p, errShort
		}
		if bytes.IndexByte(rest[:i], '[') >= 0 {
			// Internal subsets declare entities; refusing them also
			// refuses entity-expansion bombs.
			return token{}, p, errors.New("document type declarations with an internal subset are not supported")
		}
		return token{kind: tokSkip}, p + i + 1, nil
	}
	return token{}, p, fmt.Errorf("malformed markup %q", clip(rest, 16))
}

func lexStart(b []byte, p int) (token, int, error) {
	j := p + 1
	for j < len(b) && !isNameEnd(b[j]) {
		j++
	}
	if j >= len(b) {
		return token{}, p, errShort
	}
	if j == p+1 {
		return token{}, p, fmt.Errorf("malformed tag %q", clip(b[p:], 16))
	}
	name := localName(b[p+1 : j])
	for k := j; k < len(b); {
		switch c := b[k]; c {
		case '>':
			return token{kind: tokStart, name: name, attrs: b[j:k]}, k + 1, nil
		case '/':
			if k+1 >= len(b) {
				return token{}, p, errShort
			}
			if b[k+1] != '>' {
				return token{}, p, fmt.Errorf("malformed tag %q", clip(b[p:], 32))
			}
			return token{kind: tokStart, self: true, name: name, attrs: b[j:k]}, k + 2, nil
		case '"', '\'':
			q := bytes.IndexByte(b[k+1:], c)
			if q < 0 {
				return token{}, p, errShort
			}
			k += q + 2
		case '<':
			return token{}, p, fmt.Errorf("malformed tag %q", clip(b[p:], 32))
		default:
			k++
		}
	}
	return token{}, p, errShort
}

func isNameEnd(c byte) bool {
	return c == ' ' || c == '>' || c == '/' || c == '\t' || c == '\n' || c == '\r'
}

func trimSpaceRight(b []byte) []byte {
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// localName drops a namespace prefix: some producers write <x:row>.
func localName(name []byte) []byte {
	if i := bytes.LastIndexByte(name, ':'); i >= 0 {
		return name[i+1:]
	}
	return name
}

func clip(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// tagName returns the position after the name of the tag at b[p].
func tagName(b []byte, p int) int {
	i := p + 1
	for i < len(b) && !isNameEnd(b[i]) {
		i++
	}
	return i
}

// attrAt reads the attribute at b[i:] in the start tag that begins at
// b[p], returning its local name and raw value and the position after it;
// or, at the tag's end, end > 0: the position after '>' or "/>", with self
// telling which. It is errShort when b ends first. Scanning the tag once
// this way is faster than finding its end and then its attributes.
func attrAt(b []byte, p, i int) (name, val []byte, next, end int, self bool, err error) {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	if i+1 >= len(b) {
		return nil, nil, 0, 0, false, errShort
	}
	switch b[i] {
	case '>':
		return nil, nil, 0, i + 1, false, nil
	case '/':
		if b[i+1] != '>' {
			return nil, nil, 0, 0, false, fmt.Errorf("malformed tag %q", clip(b[p:], 32))
		}
		return nil, nil, 0, i + 2, true, nil
	}
	eq := i
	for eq < len(b) && b[eq] != '=' && b[eq] != '>' && b[eq] != '<' {
		eq++
	}
	if eq >= len(b) {
		return nil, nil, 0, 0, false, errShort
	}
	name = trimSpaceRight(b[i:eq])
	j := eq + 1
	for j < len(b) && isSpace(b[j]) {
		j++
	}
	if j >= len(b) {
		return nil, nil, 0, 0, false, errShort
	}
	if b[eq] != '=' || !isAttrName(name) || (b[j] != '"' && b[j] != '\'') {
		return nil, nil, 0, 0, false, fmt.Errorf("malformed tag %q", clip(b[p:], 32))
	}
	e := j + 1
	for e < len(b) && b[e] != b[j] {
		e++
	}
	if e >= len(b) {
		return nil, nil, 0, 0, false, errShort
	}
	return localName(name), b[j+1 : e], e + 1, 0, false, nil
}

func isAttrName(name []byte) bool {
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c == '<' || c == '>' || c == '/' || c == '"' || c == '\'' || isSpace(c) {
			return false
		}
	}
	return true
}

// nextAttr returns the attribute at a[i:] (a start tag's attrs) and the
// index after it; ok is false when none is left.
func nextAttr(a []byte, i int) (name, val []byte, next int, ok bool) {
	for i < len(a) && isSpace(a[i]) {
		i++
	}
	eq := bytes.IndexByte(a[i:], '=')
	if eq < 0 {
		return nil, nil, len(a), false
	}
	name = localName(trimSpaceRight(a[i : i+eq]))
	j := i + eq + 1
	for j < len(a) && isSpace(a[j]) {
		j++
	}
	if j >= len(a) || (a[j] != '"' && a[j] != '\'') {
		return nil, nil, len(a), false
	}
	e := bytes.IndexByte(a[j+1:], a[j])
	if e < 0 {
		return nil, nil, len(a), false
	}
	return name, a[j+1 : j+1+e], j + e + 2, true
}

// appendText appends XML character data to dst with entities and character
// references decoded and raw line ends normalised to \n, as XML requires
// (a CR written as &#xD; stays; Office writes one as _x000D_).
func appendText(dst, raw []byte) ([]byte, error) {
	if bytes.IndexByte(raw, '&') < 0 {
		return appendCDATA(dst, raw), nil
	}
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '&')
		if i < 0 {
			return appendCDATA(dst, raw), nil
		}
		dst = appendCDATA(dst, raw[:i])
		raw = raw[i:]
		e := bytes.IndexByte(raw, ';')
		if e < 0 || e > 12 {
			return dst, fmt.Errorf("unterminated entity %q", clip(raw, 12))
		}
		var err error
		if dst, err = appendEntity(dst, raw[1:e]); err != nil {
			return dst, err
		}
		raw = raw[e+1:]
	}
	return dst, nil
}

// appendCDATA appends text that has no entities to decode, with raw line
// ends normalised.
func appendCDATA(dst, raw []byte) []byte {
	start := len(dst)
	return normaliseCR(append(dst, raw...), start)
}

// normaliseCR rewrites \r\n and lone \r in b[from:] to \n, in place.
func normaliseCR(b []byte, from int) []byte {
	i := bytes.IndexByte(b[from:], '\r')
	if i < 0 {
		return b
	}
	w := from + i
	for r := w; r < len(b); r++ {
		c := b[r]
		if c == '\r' {
			if r+1 < len(b) && b[r+1] == '\n' {
				continue
			}
			c = '\n'
		}
		b[w] = c
		w++
	}
	return b[:w]
}

func appendEntity(dst, name []byte) ([]byte, error) {
	switch string(name) {
	case "amp":
		return append(dst, '&'), nil
	case "lt":
		return append(dst, '<'), nil
	case "gt":
		return append(dst, '>'), nil
	case "quot":
		return append(dst, '"'), nil
	case "apos":
		return append(dst, '\''), nil
	}
	if len(name) < 2 || name[0] != '#' {
		return dst, fmt.Errorf("unknown entity &%s;", name)
	}
	var n uint64
	var err error
	if name[1] == 'x' {
		n, err = strconv.ParseUint(string(name[2:]), 16, 32)
	} else {
		n, err = strconv.ParseUint(string(name[1:]), 10, 32)
	}
	r := rune(n)
	if err != nil || !isXMLChar(r) {
		return dst, fmt.Errorf("invalid character reference &%s;", name)
	}
	return utf8.AppendRune(dst, r), nil
}

// isXMLChar reports whether XML 1.0 allows r in a document.
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// unescapeOOXML decodes the _xHHHH_ escapes Office writes for characters
// XML cannot carry; _x005F_ escapes the underscore itself. It works in place
// on b[from:] and returns the shortened slice.
func unescapeOOXML(b []byte, from int) []byte {
	i := bytes.Index(b[from:], []byte("_x"))
	if i < 0 {
		return b
	}
	w := from + i
	for r := w; r < len(b); {
		if b[r] == '_' && r+7 <= len(b) && b[r+1] == 'x' && b[r+6] == '_' {
			if n, err := strconv.ParseUint(string(b[r+2:r+6]), 16, 32); err == nil {
				var tmp [utf8.UTFMax]byte
				k := utf8.EncodeRune(tmp[:], rune(n))
				w += copy(b[w:], tmp[:k])
				r += 7
				continue
			}
		}
		b[w] = b[r]
		w++
		r++
	}
	return b[:w]
}
