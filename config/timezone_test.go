package config

import (
	"strings"
	"testing"
)

func TestTimeZone(t *testing.T) {
	tests := []struct {
		name, yaml, zone, err string
	}{
		{"default is UTC", "", "UTC", ""},
		{"an IANA zone", "time_zone: Europe/Paris\n", "Europe/Paris", ""},
		{"not a zone", "time_zone: CET+1\n", "", `line 1: time_zone: must be an IANA time zone such as UTC or Europe/Paris (got "CET+1")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(strings.NewReader(tt.yaml + "sources:\n  - {name: a, type: local, path: x}\n"))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			loc, lerr := c.Location()
			if err != nil || lerr != nil || loc.String() != tt.zone {
				t.Fatalf("zone %v, errors %v %v; want %s", loc, err, lerr, tt.zone)
			}
		})
	}
}
