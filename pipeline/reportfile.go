package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"

	"usagedrop/internal/safetext"
	"usagedrop/ledger"
	"usagedrop/sources"
)

// Report kinds ReadReport reads back: the files written beside a finished
// drop.
const (
	ReportStatus = "status.txt"
	ReportErrors = "errors.csv"
)

// ErrNoReport means the drop has no such report to read: it is not
// finished, it went nowhere (vanished), or it never had that kind (only a
// rejected drop has an errors.csv).
var ErrNoReport = errors.New("no such report")

// ReadReport reads back the report of kind (ReportStatus or ReportErrors)
// that finishing drop e wrote beside its file, from the file's source, so
// that the status page shows the very file the user sees. It reads at most
// the report's own cap; an error satisfying errors.Is(err, fs.ErrNotExist)
// means the report is gone from the source (someone moved or deleted it).
func (p *Pipeline) ReadReport(ctx context.Context, e *ledger.Entry, kind string) ([]byte, error) {
	var suffix string
	var max int64
	switch {
	case kind == ReportStatus:
		suffix, max = statusSuffix, statusTextMax
	case kind == ReportErrors && e.State == ledger.Rejected:
		suffix, max = errorsSuffix, errorsCSVMax
	default:
		return nil, fmt.Errorf("%s of drop %s: %w", kind, e.ID, ErrNoReport)
	}
	if !e.Finished || e.FinalKey == "" {
		return nil, fmt.Errorf("%s of drop %s: %w", kind, e.ID, ErrNoReport)
	}
	// Held like a step, so that a reload does not close the source while
	// the report is read.
	src, done := p.use(e.Source)
	defer done()
	if src == nil {
		return nil, fmt.Errorf("%s of drop %s: source %s is no longer configured: %w", kind, e.ID, safetext.Name(e.Source), ErrNoReport)
	}
	key := path.Join(path.Dir(e.FinalKey), sources.ReportName(path.Base(e.FinalKey), suffix))
	r, err := src.Src.Open(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", safetext.Name(key), err)
	}
	defer r.Close()
	// The report was written within its cap; one found larger was put
	// there by someone else and is cut, not loaded whole.
	b, err := io.ReadAll(io.LimitReader(r, max))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", safetext.Name(key), err)
	}
	return b, nil
}
