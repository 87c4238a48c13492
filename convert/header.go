package convert

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"usagedrop/internal/safetext"
)

// Template column names, as Zuora's usage template spells them.
const (
	colAccount      = "ACCOUNT_ID"
	colUOM          = "UOM"
	colQty          = "QTY"
	colStart        = "STARTDATE"
	colEnd          = "ENDDATE"
	colSubscription = "SUBSCRIPTION_ID"
	colCharge       = "CHARGE_ID"
	colDescription  = "DESCRIPTION"
	colUniqueKey    = "UNIQUE_KEY"
	colRatePlan     = "PRODUCT_RATE_PLAN_CHARGE_ID"
)

// field indexes a Record's fields in a fixed order, so a header mapping is a
// small array rather than a map looked up per cell.
type field int

const (
	fAccount field = iota
	fUOM
	fQty
	fStart
	fEnd
	fSubscription
	fCharge
	fDescription
	fUniqueKey
	fRatePlan
	numFields
)

var fieldColumns = [numFields]string{
	colAccount, colUOM, colQty, colStart, colEnd,
	colSubscription, colCharge, colDescription, colUniqueKey, colRatePlan,
}

var requiredFields = []field{fAccount, fUOM, fQty, fStart}

// synonyms are header spellings seen in finance exports, in normalised form
// (see normHeader). They are deliberately conservative: a wrong match would
// import the wrong column, which is worse than asking for a `columns:` entry.
var synonyms = map[string]field{
	"accountid": fAccount, "accountnumber": fAccount, "account": fAccount,
	"accountno": fAccount, "acctno": fAccount, "acctnumber": fAccount,
	"acctid": fAccount, "acct": fAccount, "customeraccount": fAccount,
	"customeraccountnumber": fAccount, "billingaccount": fAccount,
	"billingaccountnumber": fAccount,

	"uom": fUOM, "unitofmeasure": fUOM, "unitofmeasurement": fUOM,
	"unit": fUOM, "units": fUOM,

	"qty": fQty, "quantity": fQty, "usagequantity": fQty, "usageqty": fQty,

	"startdate": fStart, "usagedate": fStart, "date": fStart,
	"usagestartdate": fStart, "start": fStart, "startdatetime": fStart,

	"enddate": fEnd, "usageenddate": fEnd, "end": fEnd, "enddatetime": fEnd,

	"subscriptionid": fSubscription, "subscription": fSubscription,
	"subscriptionnumber": fSubscription, "subscriptionno": fSubscription,
	"subscriptionname": fSubscription,

	"chargeid": fCharge, "charge": fCharge, "chargenumber": fCharge,
	"chargeno": fCharge,

	"description": fDescription, "desc": fDescription,

	"uniquekey": fUniqueKey,

	"productrateplanchargeid": fRatePlan, "rateplanchargeid": fRatePlan,
}

// normHeader folds case and drops everything but letters and digits, so
// "Acct. No", "ACCT_NO" and "acctno" compare equal.
func normHeader(s string) string {
	var buf [64]byte
	return string(appendNormHeader(buf[:0], s))
}

// appendNormHeader appends normHeader(s) to b, with a byte loop for ASCII:
// a header row of thousands of columns is normalised without an
// allocation per cell.
func appendNormHeader(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= utf8.RuneSelf:
			for _, r := range s[i:] {
				if unicode.IsLetter(r) || unicode.IsDigit(r) {
					b = utf8.AppendRune(b, unicode.ToLower(r))
				}
			}
			return b
		case 'A' <= c && c <= 'Z':
			b = append(b, c+'a'-'A')
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			b = append(b, c)
		}
	}
	return b
}

// mapping says which source column feeds each field; -1 means none.
type mapping struct {
	col     [numFields]int
	width   int      // number of columns in the header row
	ignored []string // source headers that feed no field
	found   []string // non-empty source headers, for messages
	dup     string   // a problem when two source columns claim one field

	// moreFound and moreIgnored count the names past the cap on names
	// kept: a header of thousands of columns costs no more than its cap.
	moreFound, moreIgnored int
}

// maxColumnName is the longest header cell that may name a column; a
// longer one is data, and normalising it would cost for nothing.
const maxColumnName = 256

// columnOf resolves one source header to a field, the source's `columns:`
// overrides first.
func columnOf(h string, over map[string]field) (field, bool) {
	if len(h) > maxColumnName {
		return 0, false
	}
	var buf [64]byte
	n := appendNormHeader(buf[:0], h)
	if len(n) == 0 {
		return 0, false
	}
	if f, ok := over[string(n)]; ok {
		return f, true
	}
	f, ok := synonyms[string(n)]
	return f, ok
}

// overrides turns Options.Columns into normalised source header → field.
func overrides(cols map[string]string) (map[string]field, error) {
	if len(cols) == 0 {
		return nil, nil
	}
	over := make(map[string]field, len(cols))
	for tc, src := range cols {
		f := field(-1)
		for i, c := range fieldColumns {
			if strings.EqualFold(normHeader(c), normHeader(tc)) {
				f = field(i)
			}
		}
		if f < 0 {
			return nil, fmt.Errorf("columns: unknown template column %q (want one of %s)", tc, strings.Join(fieldColumns[:], ", "))
		}
		over[normHeader(src)] = f
	}
	return over, nil
}

// mapHeader maps a candidate header row. ok is false unless every required
// field is present, which is how the header row is told from title rows.
// At most keep names are kept in found and in ignored; the rest are
// counted.
func mapHeader(row []string, over map[string]field, keep int) (m mapping, ok bool) {
	for i := range m.col {
		m.col[i] = -1
	}
	m.width = len(row)
	for i, h := range row {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if len(m.found) < keep {
			// Kept in the summary: a copy, not the reader's buffer, and
			// no longer than any column name can be.
			m.found = append(m.found, strings.Clone(safetext.Clip(h, maxColumnName)))
		} else {
			m.moreFound++
		}
		f, known := columnOf(h, over)
		if !known {
			if len(m.ignored) < keep {
				m.ignored = append(m.ignored, strings.Clone(safetext.Clip(h, maxColumnName)))
			} else {
				m.moreIgnored++
			}
			continue
		}
		if prev := m.col[f]; prev >= 0 {
			m.dup = fmt.Sprintf("columns %q and %q both look like %s; name the one to use under columns: in the source's settings", row[prev], h, fieldColumns[f])
			continue
		}
		m.col[f] = i
	}
	return m, len(m.missing()) == 0
}

// missing lists the required template columns the mapping lacks.
func (m *mapping) missing() []string {
	var out []string
	for _, f := range requiredFields {
		if m.col[f] < 0 {
			out = append(out, fieldColumns[f])
		}
	}
	return out
}

// score ranks rows that are not a complete header, to name the most
// header-like one in the problem.
func (m *mapping) score() int {
	n := 0
	for _, c := range m.col {
		if c >= 0 {
			n++
		}
	}
	return n
}

// missingProblem is the one file-level problem for an unrecognised header.
func (m *mapping) missingProblem() string {
	found := "none"
	if len(m.found) > 0 {
		q := make([]string, len(m.found))
		for i, f := range m.found {
			q[i] = fmt.Sprintf("%q", f)
		}
		found = strings.Join(q, ", ")
		if m.moreFound > 0 {
			found += fmt.Sprintf(" and %d more", m.moreFound)
		}
	}
	return fmt.Sprintf("no header row with the required columns: missing %s; the columns found were %s (rename them, or map them under columns: in the source's settings)",
		strings.Join(m.missing(), ", "), found)
}

// sortedUnique merges ignored column lists across sheets and members.
func sortedUnique(in []string) []string {
	sort.Strings(in)
	out := in[:0]
	for i, s := range in {
		if i == 0 || s != in[i-1] {
			out = append(out, s)
		}
	}
	return out
}
