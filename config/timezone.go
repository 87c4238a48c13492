package config

import (
	"time"
	// The zone database is in the binary: a minimal host (a container,
	// a fresh VM) may have none, and a report's times must not depend
	// on it.
	_ "time/tzdata"
)

// Location is the zone of TimeZone, UTC when it is empty.
func (c *Config) Location() (*time.Location, error) {
	if c.TimeZone == "" {
		return time.UTC, nil
	}
	return time.LoadLocation(c.TimeZone)
}
