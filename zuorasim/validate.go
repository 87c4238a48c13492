package zuorasim

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"usagedrop/usage"
)

// Template columns (zuora-api.md, The template; seed 001), the names and
// facts of package usage. The first seven must be present as headers
// ("Every template column header must be present even when its values are
// empty"); the rest are optional, as the header set is the tenant's.
// DESCRIPTION is among the classic eight but optional here: the docs list
// it as a column, not as required.
var requiredColumns, optionalColumns = func() (req, opt []string) {
	for f := range usage.NumFields {
		if f.RequiredHeader() {
			req = append(req, f.Column())
		} else {
			opt = append(opt, f.Column())
		}
	}
	return req, opt
}()

// isDecimal reports whether q is a plain decimal ("12", "0.5", ".5",
// "3."), possibly negative so that the sign can be reported in Zuora's
// words.
func isDecimal(q string) bool {
	q = strings.TrimPrefix(q, "-")
	digits, dot := 0, false
	for i := 0; i < len(q); i++ {
		switch c := q[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return digits > 0
}

// parseUsage reads a template CSV. It returns the records, the number of
// non-empty rows, and a problem per bad row (or for the whole file) in
// Zuora's words. Any problem fails the whole import. wsdl is the API
// version of the call: PRODUCT_RATE_PLAN_CHARGE_ID needs 146 or higher.
func parseUsage(data []byte, opt Options, wsdl float64) ([]Record, int, []string) {
	// zuora-api.md, The template: "UTF-8 only".
	if !utf8.Valid(data) {
		return nil, 0, []string{"The file is not UTF-8 encoded"}
	}
	// Silent on a byte order mark: stricter reading, refused. None of the
	// CSV flavours Zuora recommends (seed 001, "Usage file format")
	// writes one, and with it the first header is not ACCOUNT_ID.
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		return nil, 0, []string{"The file starts with a byte order mark (UTF-8 BOM); save it as CSV without one"}
	}
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, 0, []string{"The file is empty"}
	}
	if err != nil {
		return nil, 0, []string{"The header cannot be read: " + err.Error()}
	}
	cols, problems := mapHeader(header, opt)
	// zuora-api.md, The template: PRODUCT_RATE_PLAN_CHARGE_ID "needs
	// header X-Zuora-WSDL-Version: 146 or higher".
	if _, ok := cols["PRODUCT_RATE_PLAN_CHARGE_ID"]; ok && wsdl < float64(usage.RatePlanCharge.MinWSDL()) {
		problems = append(problems, fmt.Sprintf("The column PRODUCT_RATE_PLAN_CHARGE_ID needs X-Zuora-WSDL-Version %d or higher", usage.RatePlanCharge.MinWSDL()))
	}
	if len(problems) > 0 {
		return nil, 0, problems
	}
	v := rowChecker{opt: opt, cols: cols, keys: map[string]int{}, width: len(header)}
	var recs []Record
	for {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			line, _ := cr.FieldPos(0)
			problems = append(problems, fmt.Sprintf("Row %d: the CSV cannot be read: %v", line, err))
			break
		}
		// zuora-api.md, The template: "A row whose values are all empty
		// is omitted."
		if allEmpty(row) {
			continue
		}
		v.total++
		line, _ := cr.FieldPos(0)
		rec, bad := v.check(line, row)
		problems = append(problems, bad...)
		if len(bad) == 0 {
			recs = append(recs, rec)
		}
	}
	if len(problems) > 0 {
		return nil, v.total, problems
	}
	return recs, v.total, nil
}

// mapHeader maps template column names to their index. Names are taken
// as the template spells them: the docs are silent on case and spaces, so
// the stricter reading takes neither "account_id" nor " UOM". A custom
// field (Name__c) is a column when the tenant has it (Options.CustomFields).
func mapHeader(header []string, opt Options) (map[string]int, []string) {
	cols := map[string]int{}
	var problems []string
	known := func(name string) bool {
		if strings.HasSuffix(name, "__c") {
			return opt.CustomFields == nil || slices.Contains(opt.CustomFields, name)
		}
		return slices.Contains(requiredColumns, name) || slices.Contains(optionalColumns, name)
	}
	for i, name := range header {
		switch {
		case name == "":
			// Silent: stricter reading.
			problems = append(problems, fmt.Sprintf("The header of column %d is empty", i+1))
		case !known(name):
			problems = append(problems, fmt.Sprintf("The column %s is not in the usage template", name))
		default:
			// Silent on a column twice: stricter reading, refused.
			if _, dup := cols[name]; dup {
				problems = append(problems, fmt.Sprintf("The column %s appears twice in the header", name))
			}
			cols[name] = i
		}
	}
	for _, c := range requiredColumns {
		if _, ok := cols[c]; !ok {
			problems = append(problems, fmt.Sprintf("The required column %s is missing from the header", c))
		}
	}
	return cols, problems
}

func allEmpty(row []string) bool {
	for _, f := range row {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// rowChecker validates rows of one file.
type rowChecker struct {
	opt   Options
	cols  map[string]int
	keys  map[string]int // UNIQUE_KEY → row it was first seen on
	width int
	total int
}

// check validates one row, returning its record or its problems.
func (v *rowChecker) check(line int, row []string) (Record, []string) {
	var bad []string
	fail := func(msg string) { bad = append(bad, fmt.Sprintf("Row %d: %s", line, msg)) }
	// Silent on a row wider or narrower than the header: stricter
	// reading, refused.
	if len(row) != v.width {
		fail(fmt.Sprintf("the row has %d values; the header has %d columns", len(row), v.width))
		return Record{}, bad
	}
	get := func(col string) string {
		if i, ok := v.cols[col]; ok {
			return strings.TrimSpace(row[i])
		}
		return ""
	}
	rec := Record{
		Account: get("ACCOUNT_ID"), UOM: get("UOM"), Qty: get("QTY"),
		Subscription: get("SUBSCRIPTION_ID"), Charge: get("CHARGE_ID"),
		Description: get("DESCRIPTION"), UniqueKey: get("UNIQUE_KEY"),
		RatePlanCharge: get("PRODUCT_RATE_PLAN_CHARGE_ID"),
	}
	for name, i := range v.cols {
		if strings.HasSuffix(name, "__c") && row[i] != "" {
			if rec.Custom == nil {
				rec.Custom = map[string]string{}
			}
			rec.Custom[name] = row[i]
		}
	}
	for _, msg := range v.checkFields(&rec, get("STARTDATE"), get("ENDDATE")) {
		fail(msg)
	}
	// zuora-api.md, The template: "the same key twice in one file fails
	// the file".
	if k := rec.UniqueKey; k != "" {
		if first, dup := v.keys[k]; dup {
			fail(fmt.Sprintf("The UNIQUE_KEY %s is duplicated in the file (first on row %d)", k, first))
		} else {
			v.keys[k] = line
		}
	}
	return rec, bad
}

// checkFields validates a record's values and fills in its dates, returning
// Zuora's message for each bad value. Both the file import and the object
// API use it. The rules and their words are zuora-api.md's, The template
// (seeds 001 and 003) unless a comment says otherwise.
func (v *rowChecker) checkFields(rec *Record, start, end string) []string {
	var bad []string
	// ACCOUNT_ID: the account number, at most 50 characters, one that
	// exists in the tenant.
	switch {
	case rec.Account == "":
		bad = append(bad, "The ACCOUNT_ID is missing")
	case textLen(rec.Account) > usage.Account.MaxLen():
		bad = append(bad, fmt.Sprintf("The ACCOUNT_ID length is longer than the %d character maximum", usage.Account.MaxLen()))
	case v.opt.Accounts != nil && !slices.Contains(v.opt.Accounts, rec.Account):
		bad = append(bad, fmt.Sprintf("The ACCOUNT_ID %s does not exist", rec.Account))
	}
	// UOM: "must match a unit configured in the tenant".
	switch {
	case rec.UOM == "":
		bad = append(bad, "The UOM is missing")
	case v.opt.UOMs != nil && !slices.Contains(v.opt.UOMs, rec.UOM):
		bad = append(bad, fmt.Sprintf("The UOM %s is invalid", rec.UOM))
	}
	if msg := checkQty(rec.Qty); msg != "" {
		bad = append(bad, msg)
	}
	// STARTDATE is required, a date in the API user's locale; ENDDATE is
	// optional and not before it.
	var err error
	if start == "" {
		bad = append(bad, "The STARTDATE is missing")
	} else if rec.Start, err = parseDate(start, v.opt.DateFormat); err != nil {
		bad = append(bad, "The STARTDATE format is invalid")
	}
	if end != "" {
		if rec.End, err = parseDate(end, v.opt.DateFormat); err != nil {
			bad = append(bad, "The ENDDATE format is invalid")
		}
	}
	if rec.Start != "" && rec.End != "" && rec.Start > rec.End {
		bad = append(bad, "The Usage STARTDATE cannot be after the ENDDATE")
	}
	bad = append(bad, checkText(rec)...)
	return bad
}

// checkQty returns Zuora's message for a bad quantity, or "": a plain
// decimal, not negative, at most 16 characters and 13 digits before the
// point (zuora-api.md, The template; seed 003). Exponents and thousands
// separators: silent, stricter reading, refused.
func checkQty(q string) string {
	switch {
	case q == "":
		return "The QTY is missing"
	case !isDecimal(q):
		return "The QTY format is invalid"
	case strings.HasPrefix(q, "-"):
		return "The QTY cannot be less than 0"
	case len(q) > usage.MaxQtyChars:
		return fmt.Sprintf("The QTY length is longer than the %d character maximum", usage.MaxQtyChars)
	}
	whole, _, _ := strings.Cut(q, ".")
	if len(strings.TrimLeft(whole, "0")) > usage.MaxQtyIntDigits {
		return "The Usage Quantity exceeds 13 digits before the decimal place"
	}
	return ""
}

// checkText checks the free-text fields' lengths and characters
// (zuora-api.md, The template; seed 003): DESCRIPTION at most 200 and no
// emoji, SUBSCRIPTION_ID 100, CHARGE_ID 50, UNIQUE_KEY "< 255", counted
// by textLen.
func checkText(rec *Record) []string {
	var bad []string
	tooLong := func(f usage.Field, v string) bool { return textLen(v) > f.MaxLen() }
	if tooLong(usage.Description, rec.Description) {
		bad = append(bad, fmt.Sprintf("DESCRIPTION length is longer than the %d character maximum", usage.Description.MaxLen()))
	}
	if hasEmoji(rec.Description) {
		bad = append(bad, "The DESCRIPTION contains an emoji, which is not supported")
	}
	if tooLong(usage.Subscription, rec.Subscription) {
		bad = append(bad, fmt.Sprintf("The SUBSCRIPTION_ID length is longer than the %d character maximum", usage.Subscription.MaxLen()))
	}
	if tooLong(usage.Charge, rec.Charge) {
		bad = append(bad, fmt.Sprintf("The CHARGE_ID length is longer than the %d character maximum", usage.Charge.MaxLen()))
	}
	if tooLong(usage.UniqueKey, rec.UniqueKey) {
		bad = append(bad, fmt.Sprintf("The UNIQUE_KEY length must be less than %d characters", usage.UniqueKey.MaxLen()+1))
	}
	return bad
}

// hasEmoji reports whether s holds a character from the emoji blocks,
// which Zuora's import rejects.
func hasEmoji(s string) bool {
	for _, r := range s {
		switch {
		case r >= 0x1F000 && r <= 0x1FAFF, // pictographs, emoticons, transport, flags
			r >= 0x2600 && r <= 0x27BF, // miscellaneous symbols, dingbats
			r == 0xFE0F, r == 0x200D:   // emoji presentation, joiner
			return true
		}
	}
	return false
}

// parseDate reads a date in the API user's locale, "MM/DD/YYYY" or
// "DD/MM/YYYY" (zuora-api.md, The template; seed 001), and returns it as
// YYYY-MM-DD. The docs show two-digit days and months and are silent on
// one digit: stricter reading, refused. Impossible dates (02/30/2026) and
// a time of day ("date only") are errors.
func parseDate(s, format string) (string, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 || len(parts[2]) != 4 {
		return "", fmt.Errorf("date %q is not %s", s, format)
	}
	nums := make([]int, 3)
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || (i < 2 && len(p) != 2) || strings.ContainsAny(p, "+-") {
			return "", fmt.Errorf("date %q is not %s", s, format)
		}
		nums[i] = n
	}
	month, day, year := nums[0], nums[1], nums[2]
	if format == "DD/MM/YYYY" {
		month, day = day, month
	}
	t := time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
	if t.Year() != year || int(t.Month()) != month || t.Day() != day {
		return "", fmt.Errorf("date %q does not exist", s)
	}
	return t.Format(time.DateOnly), nil
}

// textLen is the length of s as Zuora counts "characters". The docs do not
// say which count they mean; Zuora runs on Java, whose strings count
// UTF-16 units, so a character outside the Basic Multilingual Plane
// counts two. Silent: the stricter reading (it never counts less than
// runes, and never more than bytes). The client counts with usage.Len;
// this is the sim's own count, kept apart so that a wrong count on either
// side shows in the tests.
func textLen(s string) int {
	n := 0
	for _, r := range s {
		n += max(utf16.RuneLen(r), 1)
	}
	return n
}
