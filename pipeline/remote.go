package pipeline

import (
	"fmt"
	"log/slog"
	"time"

	"usagedrop/config"
	"usagedrop/sources/s3"
	"usagedrop/sources/sftp"
)

// buildRemote makes the S3 and SFTP backends.
func buildRemote(s *Source, c config.Source, instance string, log *slog.Logger) error {
	switch c.Type {
	case "s3":
		b := s3.New(c.Name, c.Bucket, c.Prefix)
		b.Region, b.Endpoint, b.PathStyle = c.Region, c.Endpoint, c.PathStyle
		b.AccessKeyID, b.SecretAccessKey = c.AccessKeyID, c.SecretAccessKey.Value()
		b.SSE, b.SSEKMSKeyID, b.SQSQueueURL = c.SSE, c.SSEKMSKeyID, c.SQSQueueURL
		b.Owner, b.Lease, b.Logger = instance, time.Duration(c.Lease), log
		finishDirs(c, &b.ImportedDir, &b.FailedDir)
		s.Src = b
		return nil
	case "sftp":
		b := sftp.New(c.Name, c.Address, c.User, c.Path)
		b.Password, b.KeyFile, b.KeyPassphrase = c.Password.Value(), c.KeyFile, c.KeyPassphrase.Value()
		b.KnownHosts, b.HostKey, b.Timeout = c.KnownHosts, c.HostKey, time.Duration(c.Timeout)
		b.Owner, b.Lease, b.Logger = instance, time.Duration(c.Lease), log
		finishDirs(c, &b.ImportedDir, &b.FailedDir)
		s.Src = b
		s.Closers = append(s.Closers, b.Close)
		return nil
	}
	return fmt.Errorf("source %s: unknown type %q", c.Name, c.Type)
}
