package uploader

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// Mediation sends a part's records as usage events to a Mediation meter,
// POST /usage/bulk/{meter}, in batches within the per-call limits.
//
// Like the object API it has no file atomicity: batches are taken one by
// one. Each batch goes under an idempotency key derived from the part's
// key and the batch's index, and each event carries a UsageIdentifier (the
// record's UNIQUE_KEY, or one derived from the part's key and the record's
// index), which Mediation deduplicates for 30 days: sending a part again
// does not count its events twice. Status has nothing to poll.
type Mediation struct {
	c *Client
	// Meter is the meter's global id.
	Meter string
	// DateFormat is the order of dates in the parts: "MM/DD/YYYY" (empty)
	// or "DD/MM/YYYY".
	DateFormat string
	// MaxEvents and MaxBytes bound one call. Zero means the API sandbox's
	// 1,000 events and 1 MB, the smallest of Zuora's environments.
	MaxEvents int
	MaxBytes  int
}

var _ Uploader = (*Mediation)(nil)

// NewMediation returns the Mediation uploader for meter.
func NewMediation(c *Client, meter, dateFormat string) *Mediation {
	return &Mediation{c: c, Meter: meter, DateFormat: dateFormat}
}

// mediationEvent is one usage event for a meter with the common schema.
type mediationEvent struct {
	CustomerID      string      `json:"CustomerId"`
	UsageIdentifier string      `json:"UsageIdentifier"`
	UsageDate       string      `json:"UsageDate"`
	Quantity        json.Number `json:"Quantity"`
	UOM             string      `json:"UOM,omitempty"`
	Description     string      `json:"Description,omitempty"`
}

// Submit sends every record of p. On error, the batches before the failing
// one have been taken; sending the part again under the same key is safe.
func (m *Mediation) Submit(ctx context.Context, p Part, idempotencyKey string) (Receipt, error) {
	if idempotencyKey == "" || m.Meter == "" {
		return Receipt{}, &Error{Op: "submit", Message: p.Name + ": Mediation needs an idempotency key and a meter"}
	}
	b := &batcher{m: m, key: idempotencyKey, maxEvents: cmp.Or(m.MaxEvents, 1000), maxBytes: cmp.Or(m.MaxBytes, 1<<20)}
	err := readTemplate(p, m.DateFormat, func(r row) error {
		ev, err := json.Marshal(mediationEvent{
			CustomerID: r.Account, UsageIdentifier: cmp.Or(r.UniqueKey, eventID(idempotencyKey, r.Index)),
			UsageDate: r.Start, Quantity: json.Number(r.Qty), UOM: r.UOM, Description: r.Description,
		})
		if err != nil {
			return fmt.Errorf("%s line %d: %w", p.Name, r.Line, err)
		}
		if len(ev)+2 > b.maxBytes {
			return fmt.Errorf("%s line %d: one event is larger than the %d bytes of a call", p.Name, r.Line, b.maxBytes)
		}
		return b.add(ctx, ev)
	})
	if err == nil {
		err = b.flush(ctx)
	}
	var e *Error
	switch {
	case err == nil:
		return Receipt{API: "mediation", TrackID: trackIDFor(idempotencyKey)}, nil
	case errors.As(err, &e):
		return Receipt{}, err
	default:
		return Receipt{}, &Error{Op: "submit", Message: err.Error(), Err: err}
	}
}

// batcher gathers events into JSON arrays within a call's limits and sends
// each under a key derived from the part's key and the batch's index, so
// that the same part always makes the same batches under the same keys.
type batcher struct {
	m         *Mediation
	key       string
	maxEvents int
	maxBytes  int
	buf       bytes.Buffer
	events    int
	index     int
}

// add appends one encoded event, sending the batch first if the event
// would not fit.
func (b *batcher) add(ctx context.Context, ev []byte) error {
	if b.events == b.maxEvents || b.buf.Len()+1+len(ev)+1 > b.maxBytes {
		if err := b.flush(ctx); err != nil {
			return err
		}
	}
	sep := byte(',')
	if b.events == 0 {
		sep = '['
	}
	b.buf.WriteByte(sep)
	b.buf.Write(ev)
	b.events++
	return nil
}

// flush sends the batch, if it has any event.
func (b *batcher) flush(ctx context.Context) error {
	if b.events == 0 {
		return nil
	}
	b.buf.WriteByte(']')
	key := b.key + ":b" + strconv.Itoa(b.index)
	_, err := b.m.c.do(ctx, call{
		op: "mediation", method: http.MethodPost, url: "/usage/bulk/" + url.PathEscape(b.m.Meter),
		body: jsonBody(bytes.Clone(b.buf.Bytes())), idempotencyKey: key, trackID: trackIDFor(key),
	})
	b.buf.Reset()
	b.events = 0
	b.index++
	return err
}

// eventID derives a record's UsageIdentifier from its part's key.
func eventID(partKey string, index int) string {
	sum := sha256.Sum256([]byte(partKey + ":" + strconv.Itoa(index)))
	return "usagedrop-" + hex.EncodeToString(sum[:16])
}

// Status reports Completed: Mediation takes events when they are sent.
func (m *Mediation) Status(ctx context.Context, r Receipt) (Status, error) {
	return Status{State: Completed, Message: "Mediation took every event when the part was submitted"}, nil
}
