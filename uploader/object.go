package uploader

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
)

// ObjectImport sends a part one record at a time through the object API,
// POST /v1/object/usage, for tenants whose file import is not available.
//
// There is no file atomicity: records are created as they are sent, and a
// part that fails halfway leaves the records before the failure in Zuora.
// To keep "exactly once" anyway, every record goes under an idempotency key
// derived from the part's key and the record's index, so submitting the
// part again (with the same key, within Zuora's 24 hours) replays the
// records already created instead of creating them twice, and creates the
// rest. Status has nothing to poll: a part whose Submit returned without
// error is Completed.
type ObjectImport struct {
	c *Client
	// DateFormat is the order of dates in the parts: "MM/DD/YYYY" (empty)
	// or "DD/MM/YYYY".
	DateFormat string
	// Concurrency is how many records are in flight at once; Zuora allows
	// 40 concurrent calls per tenant, shared by everything using it. Zero
	// means 4.
	Concurrency int
}

var _ Uploader = (*ObjectImport)(nil)

// NewObjectImport returns the object API uploader for c.
func NewObjectImport(c *Client, dateFormat string) *ObjectImport {
	return &ObjectImport{c: c, DateFormat: dateFormat}
}

// objectUsage is one record as the object API takes it.
type objectUsage struct {
	AccountNumber      string      `json:"AccountNumber"`
	UOM                string      `json:"UOM"`
	Quantity           json.Number `json:"Quantity"`
	StartDateTime      string      `json:"StartDateTime"`
	EndDateTime        string      `json:"EndDateTime,omitempty"`
	SubscriptionNumber string      `json:"SubscriptionNumber,omitempty"`
	ChargeNumber       string      `json:"ChargeNumber,omitempty"`
	Description        string      `json:"Description,omitempty"`
	UniqueKey          string      `json:"UniqueKey,omitempty"`
}

// Submit creates every record of p. On error, the records before the
// failing one may exist in Zuora; the error says which row failed and
// whether trying the whole part again (same key) may succeed.
func (o *ObjectImport) Submit(ctx context.Context, p Part, idempotencyKey string) (Receipt, error) {
	if idempotencyKey == "" {
		return Receipt{}, &Error{Op: "submit", Message: p.Name + ": no idempotency key; a part is never sent without one"}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, cmp.Or(max(o.Concurrency, 0), 4))
	)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
			cancel()
		}
		mu.Unlock()
	}
	readErr := readTemplate(p, o.DateFormat, func(r row) error {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := o.create(ctx, p, r, recordKey(idempotencyKey, r.Index)); err != nil {
				fail(err)
			}
		}()
		return nil
	})
	wg.Wait()
	if first != nil {
		return Receipt{}, first
	}
	if readErr != nil {
		return Receipt{}, &Error{Op: "submit", Message: readErr.Error(), Err: readErr}
	}
	return Receipt{API: "object", TrackID: trackIDFor(idempotencyKey)}, nil
}

// create sends one record.
func (o *ObjectImport) create(ctx context.Context, p Part, r row, key string) error {
	u := objectUsage{
		AccountNumber: r.Account, UOM: r.UOM, Quantity: json.Number(r.Qty),
		StartDateTime: r.Start + "T00:00:00", SubscriptionNumber: r.Subscription,
		ChargeNumber: r.Charge, Description: r.Description, UniqueKey: r.UniqueKey,
	}
	if r.End != "" {
		u.EndDateTime = r.End + "T00:00:00"
	}
	body, err := json.Marshal(u)
	if err != nil {
		return &Error{Op: "submit", Message: fmt.Sprintf("%s line %d: %v", p.Name, r.Line, err), Err: err}
	}
	cl := call{
		op: "object", method: http.MethodPost, url: "/v1/object/usage?rejectUnknownFields=true",
		body: jsonBody(withCustom(body, r)), idempotencyKey: key, trackID: trackIDFor(key),
	}
	if u.UniqueKey != "" {
		// UniqueKey exists on the Usage object from WSDL 114 on; below
		// it, rejectUnknownFields refuses the record (zuora-api.md,
		// Object API).
		cl.wsdl = "114.0"
	}
	_, err = o.c.do(ctx, cl)
	var e *Error
	if errors.As(err, &e) {
		e.Message = fmt.Sprintf("%s line %d: %s", p.Name, r.Line, e.Message)
	}
	return err
}

// Status reports Completed: the object API creates records as they are
// sent, so a receipt exists only for a part whose records all exist.
func (o *ObjectImport) Status(ctx context.Context, r Receipt) (Status, error) {
	return Status{State: Completed, Message: "every record was created when the part was submitted"}, nil
}

// recordKey derives the idempotency key of one record of a part. Keys stay
// within maxKeyLen whatever the part's key.
func recordKey(partKey string, index int) string {
	k := partKey + ":" + strconv.Itoa(index)
	if len(k) <= maxKeyLen {
		return k
	}
	sum := sha256.Sum256([]byte(k))
	return hex.EncodeToString(sum[:])
}
