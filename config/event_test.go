package config

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

const mediationHead = "zuora:\n  api: mediation\n  meter: m-1\n"
const oneSource = "sources:\n  - {name: a, type: local, path: x}\n"

// The mapping a user writes goes over the defaults: naming one field
// keeps the others, and what is mapped decides the template's columns.
func TestEventMapping(t *testing.T) {
	tests := []struct {
		name, yaml string
		fields     map[string]string
		columns    []string
		zone       string
	}{
		{"defaults", mediationHead,
			map[string]string{"ACCOUNT_ID": "CustomerId", "UOM": "UsageIdentifier", "STARTDATE": "UsageDate", "QTY": "Quantity"},
			[]string{"ACCOUNT_ID", "UOM", "QTY", "STARTDATE"}, "UTC"},
		{"renamed and added", mediationHead + "  event:\n    fields:\n      ACCOUNT_ID: AccountNumber\n      SUBSCRIPTION_ID: SubscriptionNumber\n      ENDDATE: EndDate\n    time_zone: Europe/Paris\n",
			map[string]string{"ACCOUNT_ID": "AccountNumber", "UOM": "UsageIdentifier", "STARTDATE": "UsageDate", "QTY": "Quantity",
				"SUBSCRIPTION_ID": "SubscriptionNumber", "ENDDATE": "EndDate"},
			[]string{"ACCOUNT_ID", "UOM", "QTY", "STARTDATE", "ENDDATE", "SUBSCRIPTION_ID"}, "Europe/Paris"},
		{"an optional column left empty is not carried", mediationHead + "  event:\n    fields:\n      CHARGE_ID: \"\"\n",
			map[string]string{"ACCOUNT_ID": "CustomerId", "UOM": "UsageIdentifier", "STARTDATE": "UsageDate", "QTY": "Quantity", "CHARGE_ID": ""},
			[]string{"ACCOUNT_ID", "UOM", "QTY", "STARTDATE"}, "UTC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(strings.NewReader(tt.yaml + oneSource))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			e := c.Zuora.Event
			if !maps.Equal(e.Fields, tt.fields) || !slices.Equal(e.Columns(), tt.columns) || e.TimeZone != tt.zone {
				t.Fatalf("fields %v columns %v zone %q\nwant %v %v %q", e.Fields, e.Columns(), e.TimeZone, tt.fields, tt.columns, tt.zone)
			}
			if _, err := e.Location(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestEventMappingProblems(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"not a template column", mediationHead + "  event:\n    fields:\n      SUBSCRIPTION: Sub\n",
			`line 6: zuora.event.fields.SUBSCRIPTION: is not a column of Zuora's usage template`},
		{"a required column unmapped", mediationHead + "  event:\n    fields:\n      UOM: \"\"\n",
			`line 6: zuora.event.fields.UOM: every event needs it: name the meter's field for it (got "")`},
		{"two columns on one field", mediationHead + "  event:\n    fields:\n      DESCRIPTION: CustomerId\n",
			`line 6: zuora.event.fields.DESCRIPTION: the field is already mapped from ACCOUNT_ID; each column needs a field of its own (got "CustomerId")`},
		{"spaces around a name", mediationHead + "  event:\n    fields:\n      CHARGE_ID: \" Charge\"\n",
			`zuora.event.fields.CHARGE_ID: must be the meter's field name`},
		{"dedupe field on a mapped field", mediationHead + "  event:\n    dedupe_field: UsageIdentifier\n",
			`line 5: zuora.event.dedupe_field: is the field UOM is mapped to; the dedupe id needs a field of its own (got "UsageIdentifier")`},
		{"unknown zone", mediationHead + "  event:\n    time_zone: Paris\n",
			`line 5: zuora.event.time_zone: must be an IANA time zone such as UTC or Europe/Paris (got "Paris")`},
		{"event without mediation", "zuora:\n  event:\n    time_zone: UTC\n",
			`line 2: zuora.event: only api: mediation sends events; remove it or set api: mediation (got "file")`},
		{"columns with mediation", mediationHead + "  columns: [ACCOUNT_ID, UOM, QTY, STARTDATE]\n",
			`line 4: zuora.columns: api: mediation sends the columns zuora.event.fields maps; leave zuora.columns out`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(strings.NewReader(tt.yaml + oneSource))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}
