package config

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLogAndReadiness(t *testing.T) {
	base := "zuora:\n  endpoint: builtin\nsources:\n  - name: a\n    type: local\n    path: /x\n"
	tests := []struct {
		name, yaml string
		want       []string // problems, or none
		level      slog.Level
		json       bool
		zuora      time.Duration
	}{
		{name: "defaults", yaml: base, level: slog.LevelInfo, zuora: 5 * time.Minute},
		{name: "json and debug", yaml: base + "log:\n  format: json\n  level: debug\nreadiness:\n  zuora_unreachable: 90s\n",
			level: slog.LevelDebug, json: true, zuora: 90 * time.Second},
		{name: "case does not matter", yaml: base + "log:\n  format: JSON\n  level: Warn\n", level: slog.LevelWarn, json: true, zuora: 5 * time.Minute},
		{name: "every mistake at once", yaml: base + "log:\n  format: xml\n  level: loud\nreadiness:\n  zuora_unreachable: -1s\n", want: []string{
			`line 8: log.format: must be text or json (got "xml")`,
			`line 9: log.level: must be debug, info, warn or error (got "loud")`,
			`line 11: readiness.zuora_unreachable: must not be negative (0 means the default, 5m) (got "-1s")`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(strings.NewReader(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate()
			if len(tt.want) > 0 {
				for _, w := range tt.want {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Errorf("want %q in %v", w, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Log.SlogLevel() != tt.level || c.Log.JSON() != tt.json || c.Readiness.ZuoraLimit() != tt.zuora {
				t.Fatalf("level %v json %v zuora %v", c.Log.SlogLevel(), c.Log.JSON(), c.Readiness.ZuoraLimit())
			}
		})
	}
}
