package usage

import (
	"fmt"
	"strings"
)

// Field is one of the template's standard columns. Fields index a
// Record's values in a fixed order, so that a mapping from a source's
// header is a small array rather than a map looked up per cell.
type Field int

// The template's standard columns, in the order of Zuora's template
// (api.md §The template, seed 001): the classic eight, then the two added
// when used.
const (
	Account        Field = iota // ACCOUNT_ID: the account number
	UOM                         // UOM: a unit configured in the tenant
	Qty                         // QTY: a plain decimal
	Start                       // STARTDATE: decides the billing period
	End                         // ENDDATE
	Subscription                // SUBSCRIPTION_ID: the subscription number
	Charge                      // CHARGE_ID: the charge number
	Description                 // DESCRIPTION
	UniqueKey                   // UNIQUE_KEY: only with Prepaid with Drawdown or Unbilled Usage
	RatePlanCharge              // PRODUCT_RATE_PLAN_CHARGE_ID: WSDL 146 or higher
	NumFields                   // the number of standard columns
)

// MinWSDL is the lowest X-Zuora-WSDL-Version (the API version) under
// which Zuora reads f's column, 0 for every version:
// PRODUCT_RATE_PLAN_CHARGE_ID "needs header X-Zuora-WSDL-Version: 146 or
// higher" (api.md §The template).
func (f Field) MinWSDL() int {
	if f == RatePlanCharge {
		return 146
	}
	return 0
}

// names are the columns as Zuora's template spells them (api.md §The
// template).
var names = [NumFields]string{
	"ACCOUNT_ID", "UOM", "QTY", "STARTDATE", "ENDDATE",
	"SUBSCRIPTION_ID", "CHARGE_ID", "DESCRIPTION", "UNIQUE_KEY", "PRODUCT_RATE_PLAN_CHARGE_ID",
}

// Column returns the field's column name as the template spells it.
func (f Field) Column() string {
	if f < 0 || f >= NumFields {
		return fmt.Sprintf("Field(%d)", int(f))
	}
	return names[f]
}

// String is Column.
func (f Field) String() string { return f.Column() }

// Columns returns every standard column name, in the template's order.
func Columns() []string { return append([]string(nil), names[:]...) }

// Classic is the default template: "ACCOUNT_ID, UOM, QTY, STARTDATE,
// ENDDATE, SUBSCRIPTION_ID, CHARGE_ID, DESCRIPTION" (api.md §The template).
func Classic() []Field {
	return []Field{Account, UOM, Qty, Start, End, Subscription, Charge, Description}
}

// RequiredValue reports whether every row needs a value in f: "The
// ACCOUNT_ID is missing", "The UOM is missing", "The QTY is missing" and a
// STARTDATE, which decides the billing period (api.md §The template).
func (f Field) RequiredValue() bool {
	return f == Account || f == UOM || f == Qty || f == Start
}

// RequiredValues returns the columns every row needs a value in
// (RequiredValue), in the template's order.
func RequiredValues() []string {
	var cols []string
	for f := range NumFields {
		if f.RequiredValue() {
			cols = append(cols, f.Column())
		}
	}
	return cols
}

// RequiredHeader reports whether the file import wants f's header even
// when its values are empty: "Every template column header must be
// present even when its values are empty" (api.md §The template) names
// the template's columns; the seven before DESCRIPTION are those every
// template Zuora hands out has. DESCRIPTION, UNIQUE_KEY and
// PRODUCT_RATE_PLAN_CHARGE_ID are added when used.
func (f Field) RequiredHeader() bool { return f >= Account && f <= Charge }

// Lookup returns the field a template column name stands for, as the
// template spells it, in any case and with spaces around it.
func Lookup(name string) (Field, bool) {
	name = strings.TrimSpace(name)
	for f, n := range names {
		if strings.EqualFold(n, name) {
			return Field(f), true
		}
	}
	return 0, false
}

// IsCustomField reports whether name is a custom field's API name as
// Zuora forms them: a letter, then letters, digits or single underscores,
// ending in "__c" (for example Region__c). The file import takes a
// tenant's custom fields of the Usage object as columns and the object
// API as fields ([Format], seed 002 in zuorasim's doc).
func IsCustomField(name string) bool {
	stem, ok := strings.CutSuffix(name, "__c")
	if !ok || stem == "" || len(name) > 255 {
		return false
	}
	for i := 0; i < len(stem); i++ {
		c := stem[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		case c == '_' && i > 0 && i < len(stem)-1 && stem[i-1] != '_':
		default:
			return false
		}
	}
	return true
}

// Header is a template's columns, in order: standard fields and custom
// fields. The zero Header is the classic eight.
type Header struct {
	cols   []column
	custom []string // the custom fields' names, in order: Record.Custom's order
}

// column is one column of a Header: a standard field, or the custom field
// at index custom of Record.Custom.
type column struct {
	field  Field // -1 for a custom field
	custom int
}

// ParseHeader resolves column names to a Header. Standard columns are
// matched as Lookup does; a custom field (IsCustomField) is kept as
// written. Nil or empty names mean Classic. A name twice, or one that is
// neither, is an error naming it.
func ParseHeader(names []string) (Header, error) {
	var h Header
	if len(names) == 0 {
		for _, f := range Classic() {
			h.cols = append(h.cols, column{field: f})
		}
		return h, nil
	}
	seen := map[string]bool{}
	for _, name := range names {
		n := strings.TrimSpace(name)
		if f, ok := Lookup(n); ok {
			n = f.Column()
			h.cols = append(h.cols, column{field: f})
		} else if IsCustomField(n) {
			h.cols = append(h.cols, column{field: -1, custom: len(h.custom)})
			h.custom = append(h.custom, n)
		} else {
			return Header{}, fmt.Errorf("column %q is not a column of Zuora's usage template (%s) nor a custom field (Name__c)", name, strings.Join(Columns(), ", "))
		}
		if seen[strings.ToUpper(n)] {
			return Header{}, fmt.Errorf("column %q appears twice", name)
		}
		seen[strings.ToUpper(n)] = true
	}
	return h, nil
}

// Names returns the header's column names as written to the CSV.
func (h Header) Names() []string {
	if h.cols == nil {
		h, _ = ParseHeader(nil)
	}
	out := make([]string, len(h.cols))
	for i, c := range h.cols {
		if c.field < 0 {
			out[i] = h.custom[c.custom]
		} else {
			out[i] = c.field.Column()
		}
	}
	return out
}

// Has reports whether the header has a column for f.
func (h Header) Has(f Field) bool {
	if h.cols == nil {
		return f >= Account && f <= Description
	}
	for _, c := range h.cols {
		if c.field == f {
			return true
		}
	}
	return false
}

// Custom returns the custom fields' names, in the order of Record.Custom.
func (h Header) Custom() []string { return append([]string(nil), h.custom...) }

// Record is one usage row, normalised: text trimmed, the quantity a plain
// decimal, dates as YYYY-MM-DD whatever the template's date format.
type Record struct {
	Account        string // ACCOUNT_ID: the account number
	UOM            string
	Qty            string // plain decimal, no exponent, no grouping: "3.125"
	Start          string // YYYY-MM-DD
	End            string // YYYY-MM-DD or ""
	Subscription   string // SUBSCRIPTION_ID
	Charge         string // CHARGE_ID
	Description    string
	UniqueKey      string // UNIQUE_KEY
	RatePlanCharge string // PRODUCT_RATE_PLAN_CHARGE_ID
	// Custom holds the values of the template's custom fields, in the
	// order of Header.Custom; nil when the template has none.
	Custom []string
}

// Ptr returns where the record keeps its value of f, nil for a field
// that is not a standard column.
func (r *Record) Ptr(f Field) *string {
	switch f {
	case Account:
		return &r.Account
	case UOM:
		return &r.UOM
	case Qty:
		return &r.Qty
	case Start:
		return &r.Start
	case End:
		return &r.End
	case Subscription:
		return &r.Subscription
	case Charge:
		return &r.Charge
	case Description:
		return &r.Description
	case UniqueKey:
		return &r.UniqueKey
	case RatePlanCharge:
		return &r.RatePlanCharge
	}
	return nil
}

// Get returns the record's value of f.
func (r *Record) Get(f Field) string {
	switch f {
	case Account:
		return r.Account
	case UOM:
		return r.UOM
	case Qty:
		return r.Qty
	case Start:
		return r.Start
	case End:
		return r.End
	case Subscription:
		return r.Subscription
	case Charge:
		return r.Charge
	case Description:
		return r.Description
	case UniqueKey:
		return r.UniqueKey
	case RatePlanCharge:
		return r.RatePlanCharge
	}
	return ""
}

// Set sets the record's value of f; a field that is not a standard
// column is ignored.
func (r *Record) Set(f Field, v string) {
	if p := r.Ptr(f); p != nil {
		*p = v
	}
}
