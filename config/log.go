package config

import (
	"log/slog"
	"slices"
	"strings"
	"time"
)

// Log says how the daemon writes its log to stderr (the journal under
// systemd).
type Log struct {
	// Format is "text" (key=value, the default) or "json" (one object a
	// line, for a log shipper).
	Format string `yaml:"format"`
	// Level is the least severe level written: debug, info (the
	// default), warn or error. USAGEDROP_DEBUG set in the environment
	// means debug whatever this says. A reload applies a new level at
	// once; a new format needs a restart.
	Level string `yaml:"level"`
}

// LogFormats and LogLevels are the values log.format and log.level take.
var (
	LogFormats = []string{"text", "json"}
	LogLevels  = []string{"debug", "info", "warn", "error"}
)

// SlogLevel is Level for log/slog; an empty or unknown level is info
// (Validate refuses an unknown one).
func (l Log) SlogLevel() slog.Level {
	var v slog.Level
	if err := v.UnmarshalText([]byte(l.Level)); err != nil {
		return slog.LevelInfo
	}
	return v
}

// JSON reports whether the log is written as JSON.
func (l Log) JSON() bool { return strings.EqualFold(l.Format, "json") }

// Readiness says when the daemon answers /readyz with 503: when it cannot
// do its work, as opposed to /healthz, which says it is alive.
type Readiness struct {
	// ZuoraUnreachable is how long every call to Zuora may fail without
	// an answer (refused, timed out, a 5xx or a 429) before the daemon
	// reports itself not ready. Zero means 5m; a reload applies a new
	// value at once.
	ZuoraUnreachable Duration `yaml:"zuora_unreachable"`
}

// ZuoraLimit is ZuoraUnreachable with its default.
func (r Readiness) ZuoraLimit() time.Duration {
	if r.ZuoraUnreachable <= 0 {
		return 5 * time.Minute
	}
	return time.Duration(r.ZuoraUnreachable)
}

// logging checks log: and readiness:.
func (v *validator) logging(l Log, r Readiness) {
	v.check(l.Format == "" || slices.Contains(LogFormats, strings.ToLower(l.Format)), "log.format",
		"must be text or json", l.Format)
	v.check(l.Level == "" || slices.Contains(LogLevels, strings.ToLower(l.Level)), "log.level",
		"must be debug, info, warn or error", l.Level)
	v.check(r.ZuoraUnreachable >= 0, "readiness.zuora_unreachable",
		"must not be negative (0 means the default, 5m)", time.Duration(r.ZuoraUnreachable))
}
