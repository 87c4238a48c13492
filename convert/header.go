package convert

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"usagedrop/internal/safetext"
	"usagedrop/usage"
)

// field indexes a Record's fields: usage.Field, under a short name for the
// hot loops. Values from numFields on stand for the template's custom
// fields (numFields+k is Record.Custom[k]).
type field = usage.Field

const (
	fAccount      = usage.Account
	fUOM          = usage.UOM
	fQty          = usage.Qty
	fStart        = usage.Start
	fEnd          = usage.End
	fSubscription = usage.Subscription
	fCharge       = usage.Charge
	fDescription  = usage.Description
	fUniqueKey    = usage.UniqueKey
	fRatePlan     = usage.RatePlanCharge
	numFields     = usage.NumFields
)

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
	cust    []int    // source column of each custom field, -1 for none; shorter when the last are absent
	width   int      // number of columns in the header row
	ignored []string // source headers that feed no field
	found   []string // non-empty source headers, for messages
	dup     string   // a problem when two source columns claim one field
	dupHint string   // and the setting that settles it
	// heads holds the header text of the first columns (as many as
	// found keeps) and of every mapped one: problems name a column as
	// the user wrote it.
	heads map[int]string

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

// overrides turns Options.Columns into normalised source header → field,
// and adds the template's custom fields (custom, e.g. Region__c) under
// their own name and their name without "__c" ("Region"), unless that
// name is already a synonym of a standard column.
func overrides(cols map[string]string, custom []string) (map[string]field, error) {
	if len(cols) == 0 && len(custom) == 0 {
		return nil, nil
	}
	over := make(map[string]field, len(cols)+2*len(custom))
	for k, name := range custom {
		f := numFields + field(k)
		over[normHeader(name)] = f
		stem := normHeader(strings.TrimSuffix(name, "__c"))
		if _, syn := synonyms[stem]; !syn {
			over[stem] = f
		}
	}
	for tc, src := range cols {
		f := field(-1)
		for i := range numFields {
			if strings.EqualFold(normHeader(i.Column()), normHeader(tc)) {
				f = i
			}
		}
		for k, name := range custom {
			if tc == name {
				f = numFields + field(k)
			}
		}
		if f < 0 {
			return nil, fmt.Errorf("columns: unknown template column %q (want one of %s, or a custom field the template carries)", tc, strings.Join(usage.Columns(), ", "))
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
		if i < keep {
			m.setHead(i, h)
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
		at := m.slot(f)
		if prev := *at; prev >= 0 {
			m.dup = fmt.Sprintf("the columns %q and %q both look like %s; rename or remove one of them, or %s",
				row[prev], h, m.name(f), askAdmin("say which one to use"))
			m.dupHint = fmt.Sprintf("name the column to use for %s under columns: in the source's settings", m.name(f))
			continue
		}
		*at = i
		m.setHead(i, h)
	}
	return m, len(m.missing()) == 0
}

// setHead keeps the header text of column i, clipped and copied (the
// row is the reader's buffer).
func (m *mapping) setHead(i int, h string) {
	if m.heads == nil {
		m.heads = make(map[int]string)
	}
	if _, ok := m.heads[i]; !ok {
		m.heads[i] = strings.Clone(safetext.Clip(h, maxColumnName))
	}
}

// slot is where the source column of f is kept, a custom field's
// included.
func (m *mapping) slot(f field) *int {
	if f < numFields {
		return &m.col[f]
	}
	k := int(f - numFields)
	for len(m.cust) <= k {
		m.cust = append(m.cust, -1)
	}
	return &m.cust[k]
}

// name is f's column for a message; the mapping does not hold the custom
// fields' names.
func (m *mapping) name(f field) string {
	if f < numFields {
		return f.Column()
	}
	return "the same custom field"
}

// missing lists the required template columns the mapping lacks.
func (m *mapping) missing() []string {
	var out []string
	for f := range numFields {
		if f.RequiredValue() && m.col[f] < 0 {
			out = append(out, f.Column())
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

// missingProblem is the one file-level problem for an unrecognised
// header, and the setting that maps a column of another name.
func (m *mapping) missingProblem() (reason, hint string) {
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
	missing := strings.Join(m.missing(), ", ")
	return fmt.Sprintf("no header row with the required columns: missing %s; the columns found were %s (rename your columns to these names, or %s)",
			missing, found, askAdmin("map your column names")),
		fmt.Sprintf("map the file's column names to %s under columns: in the source's settings", missing)
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
