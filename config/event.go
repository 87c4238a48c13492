package config

import (
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"usagedrop/usage"
)

// Event maps the usage template's columns onto the fields of a Mediation
// meter's event definition (api: mediation). The field names are the
// tenant's: each meter has its own schema.
type Event struct {
	// Fields maps a template column to the event field that carries it.
	// Keys left out keep their default (DefaultEventFields); a column
	// not mapped is not sent, and a file with a value in it is rejected
	// row by row rather than losing the value.
	Fields map[string]string `yaml:"fields"`
	// TimeZone is the IANA zone (e.g. Europe/Paris) in which a template
	// date becomes a date-time at midnight. Default UTC.
	TimeZone string `yaml:"time_zone"`
	// DedupeField names an event field that usagedrop fills with a stable
	// id per record, for a meter with a Deduplicator keyed on it. Only
	// then is a batch whose answer was lost sent again.
	DedupeField string `yaml:"dedupe_field"`
}

// eventRequired are the columns every event carries: the customer, the
// usage type, the date and the quantity of the reference's event, which
// are the template's columns that need a value in every row.
var eventRequired = usage.RequiredValues()

// DefaultEventFields is the mapping onto the reference's example event
// (zuora-api.md, Mediation): CustomerId, UsageIdentifier ("identifier for
// the usage type"), UsageDate (a date-time) and Quantity (a number).
func DefaultEventFields() map[string]string {
	return map[string]string{
		"ACCOUNT_ID": "CustomerId",
		"UOM":        "UsageIdentifier",
		"STARTDATE":  "UsageDate",
		"QTY":        "Quantity",
	}
}

func (e *Event) applyDefaults() {
	if e.Fields == nil {
		e.Fields = map[string]string{}
	}
	for col, name := range DefaultEventFields() {
		if _, ok := e.Fields[col]; !ok {
			e.Fields[col] = name
		}
	}
	if e.TimeZone == "" {
		e.TimeZone = "UTC"
	}
}

// Columns returns the template columns the mapping carries, in the
// template's order, then the custom fields it maps, by name: what the
// files are converted to, so that a value in any other column is a bad
// row.
func (e Event) Columns() []string {
	var cols []string
	for _, col := range TemplateColumns {
		if e.Fields[col] != "" {
			cols = append(cols, col)
		}
	}
	for _, col := range slices.Sorted(maps.Keys(e.Fields)) {
		if usage.IsCustomField(col) && e.Fields[col] != "" {
			cols = append(cols, col)
		}
	}
	return cols
}

// Location returns the time zone of the event dates.
func (e Event) Location() (*time.Location, error) {
	return time.LoadLocation(e.TimeZone)
}

// event checks zuora.event: it belongs to api: mediation, maps template
// columns onto distinct, plausible field names, carries the four columns
// every usage record has, and names a zone that exists.
func (v *validator) event(z Zuora) {
	if z.API != "mediation" {
		v.check(v.c.Line("zuora.event") == 0, "zuora.event", "only api: mediation sends events; remove it or set api: mediation", z.API)
		return
	}
	v.check(len(z.Columns) == 0, "zuora.columns",
		"api: mediation sends the columns zuora.event.fields maps; leave zuora.columns out", strings.Join(z.Columns, ", "))
	e := z.Event
	used := map[string]string{} // field name → the column mapped to it
	for _, col := range slices.Sorted(maps.Keys(e.Fields)) {
		key, name := "zuora.event.fields."+col, e.Fields[col]
		if !slices.Contains(TemplateColumns, col) && !slices.Contains(z.CustomFields, col) {
			v.check(false, key, "is not a column of Zuora's usage template ("+strings.Join(TemplateColumns, ", ")+") nor one of zuora.custom_fields", col)
			continue
		}
		if name == "" {
			v.check(!slices.Contains(eventRequired, col), key, "every event needs it: name the meter's field for it", name)
			continue
		}
		v.check(fieldName(name), key, "must be the meter's field name: no spaces around it, no control characters, at most 255 bytes", name)
		if other, dup := used[name]; dup {
			v.check(false, key, "the field is already mapped from "+other+"; each column needs a field of its own", name)
		}
		used[name] = col
	}
	if d := e.DedupeField; d != "" {
		v.check(fieldName(d), "zuora.event.dedupe_field", "must be the meter's field name: no spaces around it, no control characters, at most 255 bytes", d)
		col, clash := used[d]
		v.check(!clash, "zuora.event.dedupe_field", "is the field "+col+" is mapped to; the dedupe id needs a field of its own", d)
	}
	_, err := e.Location()
	v.check(err == nil, "zuora.event.time_zone", "must be an IANA time zone such as UTC or Europe/Paris", e.TimeZone)
}

// fieldName reports whether s can be a meter's field name as written.
func fieldName(s string) bool {
	if s == "" || len(s) > 255 || !utf8.ValidString(s) || strings.TrimSpace(s) != s {
		return false
	}
	return !strings.ContainsFunc(s, unicode.IsControl)
}
