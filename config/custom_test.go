package config

import (
	"strings"
	"testing"
)

// TestCustomFields: custom_fields pass through api: file, soap and
// object, may be placed by columns: and mapped by a source's columns:,
// and are refused where they would be lost or are no field name.
func TestCustomFields(t *testing.T) {
	const src = "sources:\n  - {name: a, type: local, path: x, columns: {Region__c: Sales Region}}\n"
	tests := []struct {
		name, yaml, want string // want "" is valid
	}{
		{"file", "zuora:\n  custom_fields: [Region__c, Tier__c]\n" + src, ""},
		{"soap", "zuora:\n  api: soap\n  custom_fields: [Region__c]\n" + src, ""},
		{"object", "zuora:\n  api: object\n  custom_fields: [Region__c]\n" + src, ""},
		{"placed by columns", "zuora:\n  columns: [ACCOUNT_ID, UOM, QTY, STARTDATE, ENDDATE, SUBSCRIPTION_ID, CHARGE_ID, Region__c]\n  custom_fields: [Region__c]\n" + src, ""},
		{"mediation, not mapped", "zuora:\n  api: mediation\n  meter: m1\n  custom_fields: [Region__c]\n" + src,
			`line 4: zuora.custom_fields[0]: api: mediation sends only the fields zuora.event.fields maps, so its values would be lost; map it to the meter's field (zuora.event.fields.Region__c) or remove it`},
		{"mediation, mapped", "zuora:\n  api: mediation\n  meter: m1\n  custom_fields: [Region__c]\n  event:\n    fields: {Region__c: Region}\n" + src, ""},
		{"mediation maps one not listed", "zuora:\n  api: mediation\n  meter: m1\n  event:\n    fields: {Region__c: Region}\n" + src,
			`zuora.event.fields.Region__c: is not a column of Zuora's usage template`},
		{"not an API name", "zuora:\n  custom_fields: [Region]\n" + src,
			`zuora.custom_fields[0]: must be the API name of a custom field of the Usage object, such as Region__c`},
		{"twice", "zuora:\n  custom_fields: [Region__c, Region__c]\n" + src,
			`zuora.custom_fields[1]: is listed twice (got "Region__c")`},
		{"columns names one not listed", "zuora:\n  columns: [ACCOUNT_ID, UOM, QTY, STARTDATE, Tier__c]\n  custom_fields: [Region__c]\n" + src,
			`zuora.columns[4]: is not a column of Zuora's usage template`},
		{"source maps one not listed", "sources:\n  - {name: a, type: local, path: x, columns: {Region__c: Sales Region}}\n",
			`sources[0].columns.Region__c: maps a column that Zuora's template does not have (a custom field must be listed in zuora.custom_fields)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(strings.NewReader(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("valid config refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("err = %v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}
