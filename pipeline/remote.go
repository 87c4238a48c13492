package pipeline

import (
	"fmt"
	"log/slog"

	"usagedrop/config"
)

// buildRemote makes the S3 and SFTP backends.
func buildRemote(s *Source, c config.Source, instance string, log *slog.Logger) error {
	return fmt.Errorf("source %s: type %q is not built yet", c.Name, c.Type)
}
