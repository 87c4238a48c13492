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
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// ObjectImport sends a part one record at a time through the object API,
// POST /v1/object/usage, for tenants whose file import is not available.
//
// There is no file atomicity: records are created as they are sent, so a
// part can stop half-done. Exactly once rests on two things. Every record
// goes under an idempotency key derived from the part's key and the
// record's index, so a record sent again within Zuora's 24 hours (a 5xx,
// a timeout, a restart) is answered, not created twice. And the caller
// keeps each record Zuora created, by an id made from the record's
// content (RecordSubmitter), so that a later try, or a later drop of the
// same records under new keys (the file fixed after a refusal), sends
// only the records not created. A record Zuora refuses stops the part
// with a *RecordsError saying which records are in Zuora. Status has
// nothing to poll: a part whose Submit returned without error is
// Completed.
//
// A 500 that Zuora stored under a record's key is replayed for 24 hours,
// and Zuora offers no way to find a usage record it may have created
// behind it: the part waits (retryably) until the key expires, and the
// record is then sent again. If Zuora had created it, it is then there
// twice; usagedrop cannot tell, and the wait shows as "waiting for Zuora".
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

// Submit creates every record of p, none of them known to exist; see
// SubmitRecords.
func (o *ObjectImport) Submit(ctx context.Context, p Part, idempotencyKey string) (Receipt, error) {
	ids, err := o.RecordIDs(p, nil)
	if err != nil {
		return Receipt{}, err
	}
	return o.SubmitRecords(ctx, p, idempotencyKey, ids, nil, nil)
}

// RecordSubmitter is implemented by uploaders that create a part's
// records one by one, so that a part can stop half-done. The caller keeps
// which records exist, by the ids RecordIDs gives, and passes them back.
type RecordSubmitter interface {
	Uploader
	// RecordIDs returns an id per record of p, in order, made from the
	// record's values and the number of identical records before it in
	// the drop: seen counts the records of the drop's earlier parts by
	// content, and is updated (nil for a drop of one part). The same
	// record has the same id in any file that holds it, whatever its
	// line. An error means the part cannot be sent at all, and nothing
	// was.
	RecordIDs(p Part, seen map[string]int) ([]string, error)
	// SubmitRecords creates the records of p that done (id → Zuora id)
	// does not hold, calling created for each one Zuora creates before
	// counting it. A record Zuora refuses for good stops the part: the
	// error is a *RecordsError. A record whose fate stays unknown (server
	// errors, timeouts after every attempt) stops it too, with a
	// retryable error: sending again under the same key is safe.
	SubmitRecords(ctx context.Context, p Part, key string, ids []string, done map[string]string,
		created func(CreatedRecord) error) (Receipt, error)
}

var _ RecordSubmitter = (*ObjectImport)(nil)

// CreatedRecord is a record the object API created.
type CreatedRecord struct {
	ID      string // from RecordIDs
	Index   int    // 0-based among the part's records
	Line    int    // in the part's template CSV
	ZuoraID string
}

// RecordIDs implements RecordSubmitter. A value in a column the object
// API has no field for (PRODUCT_RATE_PLAN_CHARGE_ID) is an error here,
// before anything is sent: dropping it would change the usage.
func (o *ObjectImport) RecordIDs(p Part, seen map[string]int) ([]string, error) {
	if seen == nil {
		seen = map[string]int{}
	}
	ids := make([]string, 0, p.Records)
	err := readTemplate(p, o.DateFormat, func(r row) error {
		if r.RatePlanCharge != "" {
			return fmt.Errorf("%s line %d: PRODUCT_RATE_PLAN_CHARGE_ID: the object API has no field for it "+
				"(got %q); send this file through the file import (api: file) or SOAP", p.Name, r.Line, r.RatePlanCharge)
		}
		c := r.content()
		ids = append(ids, recordID(c, seen[c]))
		seen[c]++
		return nil
	})
	if err != nil {
		return nil, &Error{Op: "submit", Message: err.Error(), Err: err}
	}
	return ids, nil
}

// content is every value of the record as one string: two records with
// the same content are the same usage as far as Zuora can tell.
func (r row) content() string { return valuesOf(r) }

// valuesOf writes every non-empty text value of v (a struct, its embedded
// structs and slices included) with its place, and nothing else. It walks
// the fields rather than naming them, so that a value a row gains (a
// custom field) can never be left out of a record's identity; numbers
// (a row's index and line, where it sits) are not its values.
func valuesOf(v any) string {
	var (
		b    strings.Builder
		walk func(at string, v reflect.Value)
	)
	walk = func(at string, v reflect.Value) {
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				walk(at+"."+strconv.Itoa(i), v.Field(i))
			}
		case reflect.Slice, reflect.Array:
			for i := range v.Len() {
				walk(at+"."+strconv.Itoa(i), v.Index(i))
			}
		case reflect.String:
			if s := v.String(); s != "" {
				fmt.Fprintf(&b, "%s=%d:%s;", at, len(s), s)
			}
		}
	}
	walk("", reflect.ValueOf(v))
	return b.String()
}

// recordID is the id of the n-th record (from 0) of a drop with content c:
// 32 hex digits.
func recordID(c string, n int) string {
	h := sha256.Sum256(fmt.Appendf(nil, "usagedrop-record\x00%d\x00%s", n, c))
	return hex.EncodeToString(h[:16])
}

// recordOutcome is what became of one record in a SubmitRecords.
type recordOutcome struct {
	created bool   // now or before
	zuoraID string // when created
	earlier bool   // created before this call
	refused string // Zuora's reason, when refused for good
	which   string // the record's account, unit and date, to find it by
	unknown bool   // sent, fate unknown
}

// SubmitRecords implements RecordSubmitter.
func (o *ObjectImport) SubmitRecords(ctx context.Context, p Part, key string, ids []string, done map[string]string,
	created func(CreatedRecord) error) (Receipt, error) {
	if key == "" {
		return Receipt{}, &Error{Op: "submit", Message: p.Name + ": no idempotency key; a part is never sent without one"}
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		outs []recordOutcome
		// stop is the first error that ends the part: a refusal, or a
		// record whose fate is unknown. Records in flight finish either
		// way: cancelling them would leave their fate unknown too.
		refused *Error
		retry   error
		sem     = make(chan struct{}, cmp.Or(max(o.Concurrency, 0), 4))
	)
	stopped := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return refused != nil || retry != nil
	}
	readErr := readTemplate(p, o.DateFormat, func(r row) error {
		if r.Index >= len(ids) {
			return fmt.Errorf("%s: more records than ids (%d); the part changed since its ids were made", p.Name, len(ids))
		}
		id := ids[r.Index]
		mu.Lock()
		outs = append(outs, recordOutcome{})
		mu.Unlock()
		if zid, ok := done[id]; ok {
			mu.Lock()
			outs[r.Index].created, outs[r.Index].zuoraID, outs[r.Index].earlier = true, zid, true
			mu.Unlock()
			return nil
		}
		if stopped() {
			// Read on without sending, so the report accounts for
			// every record.
			return nil
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		if stopped() {
			// A record sent before it stopped the part while this one
			// waited for its turn.
			<-sem
			return nil
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			zid, err := o.create(ctx, p, r, recordKey(key, r.Index))
			if err == nil && created != nil {
				// Created in Zuora but not noted here: the next try
				// replays the answer under the same key and notes it.
				if err = created(CreatedRecord{ID: id, Index: r.Index, Line: r.Line, ZuoraID: zid}); err != nil {
					err = fmt.Errorf("note record %d of %s: %w", r.Index+1, p.Name, err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			out := &outs[r.Index]
			var e *Error
			switch {
			case err == nil:
				out.created, out.zuoraID = true, zid
			case errors.As(err, &e) && !e.Retryable && ctx.Err() == nil:
				out.refused = strings.TrimPrefix(e.Message, fmt.Sprintf("%s line %d: ", p.Name, r.Line))
				out.which = fmt.Sprintf("account %s, unit %s, date %s", r.Account, r.UOM, r.Start)
				if refused == nil {
					refused = e
				}
			default:
				out.unknown = true
				if retry == nil {
					retry = err
				}
			}
		}()
		return nil
	})
	wg.Wait()
	switch {
	case ctx.Err() != nil:
		return Receipt{}, fmt.Errorf("zuora object: %w", ctx.Err())
	case retry != nil:
		// Settle the unknown first: under the same keys, a record that
		// was created is answered again, one that was not is created.
		return Receipt{}, retry
	case refused != nil:
		return Receipt{}, &RecordsError{Part: p.Name, Err: refused, outs: outs}
	case readErr != nil:
		return Receipt{}, &Error{Op: "submit", Message: readErr.Error(), Err: readErr}
	}
	n, before := 0, 0
	for _, out := range outs {
		n++
		if out.earlier {
			before++
		}
	}
	return Receipt{API: "object", ImportID: fmt.Sprintf("%s%d:%d", ObjectReceiptPrefix, n, before), TrackID: trackIDFor(key)}, nil
}

// ObjectReceiptPrefix starts the ImportID of an object API receipt:
// "object:N:M", N records created of which M before the submit that
// completed the part (by an earlier try, or an earlier drop).
const ObjectReceiptPrefix = "object:"

// RecordsError is a part the object API stopped on: Zuora refused a
// record for good. Records before it, and some sent with it, may have
// been created; the error says which, in the words the file's report
// uses. It is final, and unwraps to Zuora's refusal.
type RecordsError struct {
	Part string
	Err  *Error // Zuora's refusal of the first record refused
	outs []recordOutcome
}

func (e *RecordsError) Error() string { return e.Part + ": " + strings.Join(e.Detail(0, 0), "; ") }

// Unwrap returns Zuora's refusal.
func (e *RecordsError) Unwrap() error { return e.Err }

// Counts returns how many of the part's records were created, refused and
// not sent.
func (e *RecordsError) Counts() (created, refused, notSent int) {
	for _, o := range e.outs {
		switch {
		case o.created:
			created++
		case o.refused != "":
			refused++
		default:
			notSent++
		}
	}
	return
}

// Detail says in a finance user's words what became of every record of
// the part, one sentence per run of consecutive records with the same
// fate: "records 1-10 were created in Zuora (ids ...)", "record 11 (line
// 12 of NAME) was refused by Zuora: ...", "records 12-39 were not sent".
// Records are numbered from first+1 (first counts the records of the
// drop's parts before this one); at most maxIDs of Zuora's ids of the
// records created are listed.
func (e *RecordsError) Detail(first, maxIDs int) []string {
	var (
		parts []string
		shown int
		fate  = func(o recordOutcome) string {
			switch {
			case o.created:
				return "created"
			case o.refused != "":
				return "refused: " + o.refused
			case o.unknown:
				return "unknown"
			}
			return "not sent"
		}
	)
	for i := 0; i < len(e.outs); {
		j, f := i, fate(e.outs[i])
		for j+1 < len(e.outs) && fate(e.outs[j+1]) == f && !strings.HasPrefix(f, "refused") {
			j++
		}
		what := fmt.Sprintf("record %d", first+i+1)
		verb := "was"
		if j > i {
			what, verb = fmt.Sprintf("records %d-%d", first+i+1, first+j+1), "were"
		}
		var s string
		switch {
		case f == "created":
			s = fmt.Sprintf("%s %s created in Zuora", what, verb)
			if maxIDs > 0 && shown < maxIDs {
				var ids []string
				for _, o := range e.outs[i : j+1] {
					if shown == maxIDs {
						ids = append(ids, "… (no more ids are listed)")
						break
					}
					ids = append(ids, cmp.Or(o.zuoraID, "?"))
					shown++
				}
				s += " (ids " + strings.Join(ids, ", ") + ")"
			}
		case f == "unknown":
			s = fmt.Sprintf("%s %s sent, and whether Zuora created it is unknown", what, verb)
		case f == "not sent":
			s = fmt.Sprintf("%s %s not sent", what, verb)
		default:
			// The line is the part's, not the dropped file's: the
			// record's own values are what the user finds it by.
			s = fmt.Sprintf("%s (%s) was refused by Zuora: %s", what, e.outs[i].which, e.outs[i].refused)
		}
		parts = append(parts, s)
		i = j + 1
	}
	return parts
}

// create sends one record and returns the id Zuora gave it.
func (o *ObjectImport) create(ctx context.Context, p Part, r row, key string) (string, error) {
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
		return "", &Error{Op: "submit", Message: fmt.Sprintf("%s line %d: %v", p.Name, r.Line, err), Err: err}
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
	rep, err := o.c.do(ctx, cl)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Message = fmt.Sprintf("%s line %d: %s", p.Name, r.Line, e.Message)
		}
		return "", err
	}
	var ans struct {
		ID string `json:"Id"`
	}
	_ = json.Unmarshal(rep.body, &ans)
	return ans.ID, nil
}

// Status reports Completed: the object API creates records as they are
// sent, so a receipt exists only for a part whose records all exist.
func (o *ObjectImport) Status(ctx context.Context, r Receipt) (Status, error) {
	var n, before int
	if _, err := fmt.Sscanf(strings.TrimPrefix(r.ImportID, ObjectReceiptPrefix), "%d:%d", &n, &before); err != nil {
		return Status{State: Completed, Message: "every record was created when the part was submitted"}, nil
	}
	msg := fmt.Sprintf("%d records created one by one", n)
	if before > 0 {
		msg += fmt.Sprintf(", %d of them before the last try (not sent again)", before)
	}
	return Status{State: Completed, Message: msg, Imported: n, Total: n}, nil
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
