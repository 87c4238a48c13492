package usage

import (
	"path"
	"strings"
	"unicode/utf8"
)

// MaxLen is the most characters (counted by Len) a value of f may have;
// 0 means the template sets no length for it.
func (f Field) MaxLen() int {
	if f < 0 || f >= NumFields {
		return 0
	}
	return maxLen[f]
}

// maxLen are the field limits of api.md §The template and seed 003, an
// array so that MaxLen costs an index in the per-value loops.
var maxLen = [NumFields]int{
	Account:        50,          // "the account number ... ≤ 50 chars"
	Qty:            MaxQtyChars, // "≤ 16 characters"
	Subscription:   100,         // "the subscription number/name (≤ 100)"
	Charge:         50,          // "the charge number, e.g. C-00000001 (≤ 50)"
	Description:    200,         // "DESCRIPTION ≤ 200 characters"
	UniqueKey:      254,         // "UNIQUE_KEY < 255 characters"
	RatePlanCharge: 32,          // a Zuora id: 32 characters (seed 003, zns:ID)
}

// The quantity: "QTY decimal, not negative in file import, at most 13
// digits before the decimal point, ≤ 16 characters" (api.md §The
// template, seed 003).
const (
	MaxQtyChars     = 16
	MaxQtyIntDigits = 13
)

// TooLong reports whether s is longer than f allows.
func (f Field) TooLong(s string) bool {
	max := f.MaxLen()
	// Len never exceeds the byte length: the first test settles most
	// values without a loop.
	return max > 0 && len(s) > max && Len(s) > max
}

// Len is the length of s as Zuora counts characters: in UTF-16 units, as
// Java does, so a character outside the Basic Multilingual Plane counts
// two (see the package doc). A byte that is not UTF-8 counts one.
func Len(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < utf8.RuneSelf {
			continue
		}
		// A multi-byte sequence of k bytes is one unit, or two for the
		// four-byte sequences outside the BMP.
		_, size := utf8.DecodeRuneInString(s[i:])
		units := 1
		if size == 4 {
			units = 2
		}
		n -= size - units
		i += size - 1
	}
	return n
}

// The upload: "Name ≤ 50 characters; size ≤ 4,194,304 bytes; CSV (.csv)
// or a zip holding exactly one CSV and no directory" (api.md §File
// import; the SOAP import's are the same, seed 000).
const (
	MaxFileSize = 4_194_304 // bytes
	MaxNameLen  = 50        // characters, by Len
)

// UploadExt returns ".csv" or ".zip" for a name Zuora's import takes by
// its extension (in any case), or "" for any other.
func UploadExt(name string) string {
	switch ext := strings.ToLower(path.Ext(name)); ext {
	case ".csv", ".zip":
		return ext
	}
	return ""
}

// HasEmoji reports characters that fail a Zuora import in DESCRIPTION:
// "an emoji in it fails the import" (api.md §The template). Which
// characters are emoji the page does not say; this is the stricter
// reading: anything outside the Basic Multilingual Plane (where emoji
// live) and the BMP's symbol blocks used as emoji, with their variation
// selector, joiner and keycap.
func HasEmoji(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0xE2 {
			continue
		}
		r, _ := utf8.DecodeRuneInString(s[i:])
		switch {
		case r > 0xFFFF && r != utf8.RuneError,
			r >= 0x2600 && r <= 0x27BF,
			r == 0xFE0F, r == 0x200D, r == 0x20E3:
			return true
		}
	}
	return false
}
