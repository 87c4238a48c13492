package pipeline

import (
	"fmt"
	"log/slog"
	"time"

	"usagedrop/config"
	"usagedrop/sources/s3"
)

// buildRemote makes the S3 and SFTP backends.
func buildRemote(s *Source, c config.Source, instance string, log *slog.Logger) error {
	switch c.Type {
	case "s3":
		b := s3.New(c.Name, c.Bucket, c.Prefix)
		b.Region, b.Endpoint, b.PathStyle = c.Region, c.Endpoint, c.PathStyle
		b.AccessKeyID, b.SecretAccessKey = c.AccessKeyID, c.SecretAccessKey.Value()
		b.SSE, b.SSEKMSKeyID = c.SSE, c.SSEKMSKeyID
		b.Owner, b.Lease, b.Logger = instance, time.Duration(c.Lease), log
		if c.ImportedDir != "" {
			b.ImportedDir = c.ImportedDir
		}
		if c.FailedDir != "" {
			b.FailedDir = c.FailedDir
		}
		s.Src = b
		return nil
	}
	return fmt.Errorf("source %s: type %q is not built yet", c.Name, c.Type)
}
