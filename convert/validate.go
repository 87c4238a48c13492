package convert

import (
	"hash/maphash"
	"strings"
	"unicode/utf8"

	"usagedrop/usage"
)

// rowError is one bad value in a row: f is the field it belongs to (-1
// for none); line, location and the column's names are added by the
// caller. hint is for the operator (Problem.Hint).
type rowError struct {
	f      field
	value  string
	reason string
	hint   string
}

// fileRules are what pass one decided about a file.
type fileRules struct {
	order   dateOrder
	decimal decimalMode
}

// validator turns mapped rows into Records the way Zuora's import would
// judge them. It is shared by every member of a drop, because UNIQUE_KEY
// must be unique in the whole drop.
type validator struct {
	dates     arena             // converted dates: one allocation for thousands
	dateCache map[string]string // raw date → YYYY-MM-DD; usage files repeat a few dozen dates
	cacheFor  dateOrder
	seed      maphash.Seed
	keys      map[uint64]struct{} // hashes of UNIQUE_KEYs seen; 8 bytes a row, and only when the column is used
	custom    int                 // custom fields each record carries (Record.Custom)
}

func newValidator() *validator {
	return &validator{seed: maphash.MakeSeed()}
}

// cell returns the trimmed value of field f, "" when unmapped or absent.
func cell(row []string, m *mapping, f field) string {
	i := m.col[f]
	if i < 0 || i >= len(row) {
		return ""
	}
	return trim(row[i])
}

// trim is strings.TrimSpace with a fast path for the usual value that
// neither starts nor ends with a space.
func trim(s string) string {
	if s == "" || s[0] > ' ' && s[0] < 0x80 && s[len(s)-1] > ' ' && s[len(s)-1] < 0x80 {
		return s
	}
	return strings.TrimSpace(s)
}

// blank reports whether every cell of row is empty; such rows are
// omitted, as Zuora omits them.
func blank(row []string) bool {
	for _, c := range row {
		if trim(c) != "" {
			return false
		}
	}
	return true
}

// record builds and validates one row. ascii says the row is known to be
// plain ASCII, so its text needs no UTF-8 check. errs is appended to and
// returned so a caller can reuse its slice.
func (v *validator) record(row []string, m *mapping, fr fileRules, ascii bool, errs []rowError) (Record, []rowError) {
	var rec Record
	bad := func(f field, val, reason, hint string) { errs = append(errs, rowError{f, val, reason, hint}) }

	rec.Account = cell(row, m, fAccount)
	switch {
	case rec.Account == "":
		bad(fAccount, "", "The ACCOUNT_ID is missing; every row needs the Zuora account number", "")
	case fAccount.TooLong(rec.Account):
		bad(fAccount, rec.Account, lengthReason(fAccount, rec.Account), "")
	}
	if rec.UOM = cell(row, m, fUOM); rec.UOM == "" {
		bad(fUOM, "", "The UOM is missing; every row needs its unit of measure, as Zuora names it (e.g. GB)", "")
	}
	raw := cell(row, m, fQty)
	qty, why, hint := normQty(raw, fr.decimal)
	if why != "" {
		bad(fQty, raw, why, hint)
	}
	rec.Qty = qty

	raw = cell(row, m, fStart)
	if raw == "" {
		bad(fStart, "", "The STARTDATE is missing; "+wantDate(fr.order, raw), "")
	} else if d, ok := v.date(raw, fr.order); ok {
		rec.Start = d
	} else {
		bad(fStart, raw, "The STARTDATE format is invalid; "+wantDate(fr.order, raw), "")
	}
	if raw = cell(row, m, fEnd); raw != "" {
		if d, ok := v.date(raw, fr.order); ok {
			rec.End = d
			if rec.Start != "" && d < rec.Start {
				bad(fEnd, raw, "The Usage STARTDATE cannot be after the ENDDATE", "")
			}
		} else {
			bad(fEnd, raw, "The ENDDATE format is invalid; "+wantDate(fr.order, raw), "")
		}
	}
	rec.Subscription = v.limited(row, m, fSubscription, bad)
	rec.Charge = v.limited(row, m, fCharge, bad)
	rec.RatePlanCharge = v.limited(row, m, fRatePlan, bad)
	rec.Description = v.limited(row, m, fDescription, bad)
	if usage.HasEmoji(rec.Description) {
		bad(fDescription, rec.Description, "The DESCRIPTION contains an emoji or a character Zuora cannot import; remove it", "")
	}
	rec.UniqueKey = v.limited(row, m, fUniqueKey, bad)
	if rec.UniqueKey != "" && !v.firstKey(rec.UniqueKey) {
		bad(fUniqueKey, rec.UniqueKey, "The UNIQUE_KEY appears more than once in this drop; each row needs its own", "")
	}
	if v.custom > 0 {
		rec.Custom = make([]string, v.custom)
		for k, i := range m.cust {
			if i >= 0 && i < len(row) {
				rec.Custom[k] = trim(row[i])
			}
		}
	}
	if ascii {
		return rec, errs
	}
	for _, f := range [...]field{fAccount, fUOM, fSubscription, fCharge, fDescription, fUniqueKey, fRatePlan} {
		if s := rec.Get(f); !utf8.ValidString(s) {
			bad(f, s, notUTF8, notUTF8Hint)
			break
		}
	}
	for k, s := range rec.Custom {
		if !utf8.ValidString(s) {
			bad(numFields+field(k), s, notUTF8, notUTF8Hint)
			break
		}
	}
	return rec, errs
}

// The words for text that is not UTF-8, which spreadsheets fix by saving
// again and an operator by naming the encoding.
const (
	notUTF8     = "The text is not valid UTF-8; save the file again as CSV UTF-8"
	notUTF8Hint = "if the source's files are in another encoding, set encoding: in the source's settings"
)

// lengthReason is the sentence for a value of f that is too long, with
// its length as Zuora counts it: "The ACCOUNT_ID is too long: at most 50
// characters (this one has 63)".
func lengthReason(f field, s string) string {
	return "The " + f.Column() + " is too long: " + tooLong(f.MaxLen(), usage.Len(s))
}

// maxDateCache bounds the cache; a file with more distinct dates than this
// just parses them.
const maxDateCache = 4096

// date is normDate through a small cache. Keys and values are copies, so
// the cache never holds on to the reader's buffers.
func (v *validator) date(raw string, o dateOrder) (string, bool) {
	if d, ok := v.dateCache[raw]; ok && v.cacheFor == o {
		return d, true
	}
	d, ok := normDateIn(&v.dates, raw, o)
	if !ok {
		return "", false
	}
	if v.cacheFor != o || len(v.dateCache) >= maxDateCache || v.dateCache == nil {
		v.dateCache, v.cacheFor = make(map[string]string, 64), o
	}
	v.dateCache[strings.Clone(raw)] = strings.Clone(d)
	return d, true
}

// limited reads an optional text field and checks its length in
// characters as Zuora counts them (usage.Len).
func (v *validator) limited(row []string, m *mapping, f field, bad func(f field, val, reason, hint string)) string {
	s := cell(row, m, f)
	if f.TooLong(s) {
		bad(f, s, lengthReason(f, s), "")
	}
	return s
}

// firstKey records k and reports whether it was new. A 64-bit hash can
// collide; the odds across a million keys are about 1 in 10^7, and a false
// duplicate is reported, never silently imported.
func (v *validator) firstKey(k string) bool {
	if v.keys == nil {
		v.keys = make(map[uint64]struct{})
	}
	h := maphash.String(v.seed, k)
	if _, dup := v.keys[h]; dup {
		return false
	}
	v.keys[h] = struct{}{}
	return true
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
