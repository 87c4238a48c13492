package uploader

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"usagedrop/internal/atomicfile"
	"usagedrop/usage"
)

// Mediation sends a part's records as usage events to a Mediation meter,
// POST /usage/bulk/{meter}, in batches within the per-call limits.
//
// What a 200 means, and what it does not (zuora-api.md, Mediation): the
// call was received and passed API-level checks; the meter validates the
// events against its schema and processes them afterwards. So a part is
// "sent to Mediation", never "imported".
//
// Exactly-once rests on never sending a batch twice. The call lists no
// Idempotency-Key and nothing deduplicates events unless the tenant put a
// Deduplicator on the meter, so:
//   - batches go one after another, and a journal beside the part records
//     each batch before it is sent and once it is answered, so that a
//     Submit after a crash or a retryable error resumes after the last
//     answered batch instead of sending the part again;
//   - an answer that says the batch was not taken (429, a connection never
//     made) is retried; a 4xx refusal ends the part, saying which records
//     went before it;
//   - a lost answer (timeout, cut-off answer, 5xx) leaves the batch's fate
//     unknown: it is sent again only when Event.DedupeField is set, whose
//     per-record id lets the meter's Deduplicator drop a repeat; otherwise
//     Submit returns an *UnknownFate naming the batch's records, and never
//     sends them again.
type Mediation struct {
	c *Client
	// Meter is the meter's global id.
	Meter string
	// DateFormat is the order of dates in the parts: "MM/DD/YYYY" (empty)
	// or "DD/MM/YYYY".
	DateFormat string
	// Event maps the template's columns onto the meter's event fields.
	Event EventMapping
	// MaxEvents and MaxBytes bound one call. Zero means the API sandbox's
	// 1,000 events and 1 MB, the smallest of Zuora's environments.
	MaxEvents int
	MaxBytes  int
}

var _ Uploader = (*Mediation)(nil)

// EventMapping says how a record becomes an event of the meter's schema.
type EventMapping struct {
	// Fields maps a template column (ACCOUNT_ID, UOM, QTY, STARTDATE, ...)
	// to the event field that carries it: QTY as a JSON number, STARTDATE
	// and ENDDATE as RFC 3339 date-times at midnight in Location, the
	// others as strings. ACCOUNT_ID, UOM, QTY and STARTDATE must be
	// mapped. A record with a value in a column that is not mapped is
	// refused before anything is sent, never sent without it.
	Fields map[string]string
	// Location is the time zone of the dates; nil means UTC.
	Location *time.Location
	// DedupeField, when set, is filled with an id per record that is the
	// same on every send of the same part content, for a meter whose
	// Deduplicator keys on that field.
	DedupeField string
}

// requiredColumns are the columns every usage event carries.
var requiredColumns = usage.RequiredValues()

// NewMediation returns the Mediation uploader for meter.
func NewMediation(c *Client, meter, dateFormat string, ev EventMapping) *Mediation {
	return &Mediation{c: c, Meter: meter, DateFormat: dateFormat, Event: ev}
}

// UnknownFate is a batch of events whose answer was lost and that was not
// sent again, because nothing at Zuora would drop a repeat: whether the
// meter has its events is unknown. It is final; its message is the
// sentence for the user.
type UnknownFate struct {
	Part  string // the part's upload name
	Batch int    // 1-based among the part's batches
	// FirstRecord and LastRecord number the batch's records among the
	// part's, from 1, in file order; FirstLine and LastLine are their
	// lines in the part's template CSV.
	FirstRecord, LastRecord int
	FirstLine, LastLine     int
	// Accepted is how many of the part's records, all before the batch,
	// were accepted for processing.
	Accepted int
	// Err is the failed call, or nil when usagedrop stopped while the
	// batch was being sent. It is not unwrapped: it may say "retry",
	// which for this batch is what must not happen.
	Err error
}

func (e *UnknownFate) Error() string {
	var b strings.Builder
	if e.Err != nil {
		fmt.Fprintf(&b, "%s: the answer to batch %d was lost (%v). ", e.Part, e.Batch, e.Err)
	} else {
		fmt.Fprintf(&b, "%s: usagedrop stopped while batch %d was being sent. ", e.Part, e.Batch)
	}
	fmt.Fprintf(&b, "Zuora may or may not have taken its %d events, records %d to %d of the part in file order "+
		"(lines %d to %d of the part), and as the meter has no dedupe field (zuora.event.dedupe_field) they were not sent again; "+
		"nothing after them was sent. ",
		e.LastRecord-e.FirstRecord+1, e.FirstRecord, e.LastRecord, e.FirstLine, e.LastLine)
	if e.Accepted > 0 {
		fmt.Fprintf(&b, "Records 1 to %d were accepted for processing. ", e.Accepted)
	} else {
		b.WriteString("No record before them was sent. ")
	}
	b.WriteString("Check the meter for those records before sending any of them again.")
	return b.String()
}

// Submit sends every record of p that an earlier Submit of the same part
// and key has not had accepted. It reads the whole part once before
// sending anything, so that a record that cannot become an event stops
// the part with nothing sent. The receipt's ImportID is
// "mediation:METER:N", N the part's events, which Status reports: there
// is no import at Zuora to name.
func (m *Mediation) Submit(ctx context.Context, p Part, idempotencyKey string) (Receipt, error) {
	if idempotencyKey == "" || m.Meter == "" {
		return Receipt{}, &Error{Op: "submit", Message: p.Name + ": Mediation needs a part key and a meter"}
	}
	enc, err := m.encoder(cmp.Or(p.SHA256, idempotencyKey))
	if err != nil {
		return Receipt{}, &Error{Op: "submit", Message: p.Name + ": " + err.Error()}
	}
	maxEvents, maxBytes := cmp.Or(m.MaxEvents, 1000), cmp.Or(m.MaxBytes, 1<<20)
	total := 0
	err = readTemplate(p, m.DateFormat, func(r row) error {
		ev, err := enc.event(r)
		if err == nil && len(ev)+2 > maxBytes {
			err = fmt.Errorf("the event is %d bytes, more than the %d bytes of a call", len(ev), maxBytes)
		}
		if err != nil {
			return fmt.Errorf("%s line %d: %w", p.Name, r.Line, err)
		}
		total++
		return nil
	})
	if err != nil {
		return Receipt{}, &Error{Op: "submit", Message: err.Error(), Err: err}
	}
	j, err := openJournal(p.Path+".mediation", idempotencyKey)
	if err != nil {
		return Receipt{}, &Error{Op: "submit", Message: p.Name + ": " + err.Error(), Err: err}
	}
	defer j.Close()
	if pb := j.pending; pb != nil && m.Event.DedupeField == "" {
		return Receipt{}, pb.unknown(p.Name, nil)
	}
	b := &batcher{m: m, j: j, part: p.Name, trackID: trackIDFor(idempotencyKey), maxEvents: maxEvents, maxBytes: maxBytes,
		index: j.batches}
	if j.pending != nil {
		b.index = j.pending.Index // sent again: the meter's Deduplicator drops what it has
	}
	from := j.resume()
	err = readTemplate(p, m.DateFormat, func(r row) error {
		if r.Index < from {
			return nil
		}
		ev, err := enc.event(r)
		if err != nil {
			return err
		}
		return b.add(ctx, r, ev)
	})
	if err == nil {
		err = b.flush(ctx)
	}
	var (
		e  *Error
		uf *UnknownFate
	)
	switch {
	case err == nil:
		return Receipt{API: "mediation", ImportID: fmt.Sprintf("mediation:%s:%d", m.Meter, total), TrackID: b.trackID}, nil
	case errors.As(err, &e), errors.As(err, &uf):
		return Receipt{}, err
	case ctx.Err() != nil:
		return Receipt{}, fmt.Errorf("zuora mediation: %w", err)
	default:
		return Receipt{}, &Error{Op: "submit", Message: err.Error(), Err: err}
	}
}

// Status reports Completed with what is true of a part Submit returned:
// its events were accepted for processing. Mediation has nothing to poll.
func (m *Mediation) Status(ctx context.Context, r Receipt) (Status, error) {
	n := 0
	if i := strings.LastIndexByte(r.ImportID, ':'); i >= 0 {
		n, _ = strconv.Atoi(r.ImportID[i+1:])
	}
	return Status{State: Completed, Imported: n, Total: n,
		Message: fmt.Sprintf("sent to Mediation (%d events accepted for processing)", n)}, nil
}

// eventEncoder turns records into the meter's events.
type eventEncoder struct {
	fields   []eventField // sorted by event field name, for a stable body
	unmapped []eventField // template columns no field carries
	loc      *time.Location
	dedupe   string
	partKey  string
}

type eventField struct {
	column, name string
	value        func(*row) *string
}

// encoder checks the mapping and prepares the fields of every event.
// partKey names the part's content in the dedupe ids.
func (m *Mediation) encoder(partKey string) (*eventEncoder, error) {
	enc := &eventEncoder{loc: cmp.Or(m.Event.Location, time.UTC), dedupe: m.Event.DedupeField, partKey: partKey}
	for _, col := range requiredColumns {
		if m.Event.Fields[col] == "" {
			return nil, fmt.Errorf("the event mapping has no field for %s, which every usage event carries", col)
		}
	}
	for _, col := range slices.Sorted(maps.Keys(m.Event.Fields)) {
		name := m.Event.Fields[col]
		value := columnValue(col)
		if value == nil {
			return nil, fmt.Errorf("the event mapping names %s, which is not a usage template column", col)
		}
		if name != "" {
			enc.fields = append(enc.fields, eventField{column: col, name: name, value: value})
		}
	}
	for _, col := range slices.Sorted(maps.Keys(templateColumns)) {
		if m.Event.Fields[col] == "" {
			enc.unmapped = append(enc.unmapped, eventField{column: col, value: templateColumns[col]})
		}
	}
	slices.SortFunc(enc.fields, func(a, b eventField) int { return strings.Compare(a.name, b.name) })
	return enc, nil
}

// jsonNumber is a decimal as JSON writes it: what QTY must be to go as a
// number.
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?$`)

// event encodes one record as a JSON object, or says why it cannot be
// sent: a value in a column the meter has no field for, or a value that
// is not of its field's type.
func (enc *eventEncoder) event(r row) ([]byte, error) {
	for _, f := range enc.unmapped {
		if v := *f.value(&r); v != "" {
			return nil, fmt.Errorf("%s: the meter's event has no field for this column (zuora.event.fields), so the value would be lost (got %q)", f.column, v)
		}
	}
	b := make([]byte, 0, 256)
	b = append(b, '{')
	put := func(name string, value []byte) {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = appendJSONString(b, name)
		b = append(b, ':')
		b = append(b, value...)
	}
	for _, f := range enc.fields {
		v := *f.value(&r)
		if v == "" {
			continue
		}
		switch f.column {
		case "QTY":
			if !jsonNumber.MatchString(v) {
				return nil, fmt.Errorf("QTY: %q is not a plain decimal number", v)
			}
			put(f.name, []byte(v))
		case "STARTDATE", "ENDDATE":
			d, err := time.ParseInLocation(time.DateOnly, v, enc.loc)
			if err != nil {
				return nil, fmt.Errorf("%s: %q is not a date", f.column, v)
			}
			put(f.name, appendJSONString(nil, d.Format(time.RFC3339)))
		default:
			put(f.name, appendJSONString(nil, v))
		}
	}
	if enc.dedupe != "" {
		put(enc.dedupe, appendJSONString(nil, eventID(enc.partKey, r.Index)))
	}
	return append(b, '}'), nil
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

// eventID is a record's dedupe id: the same for the same part content and
// record on every send, from any instance.
func eventID(partKey string, index int) string {
	sum := sha256.Sum256([]byte(partKey + ":" + strconv.Itoa(index)))
	return "usagedrop-" + hex.EncodeToString(sum[:16])
}

// batchInfo is what the journal and the messages say of one batch.
type batchInfo struct {
	Index       int // 0-based among the part's batches
	First, N    int // first record index (0-based) and how many
	FirstLine   int
	LastLine    int
	AcceptedBef int // records accepted before it
}

func (bi *batchInfo) unknown(part string, err error) *UnknownFate {
	return &UnknownFate{Part: part, Batch: bi.Index + 1, FirstRecord: bi.First + 1, LastRecord: bi.First + bi.N,
		FirstLine: bi.FirstLine, LastLine: bi.LastLine, Accepted: bi.AcceptedBef, Err: err}
}

func (bi *batchInfo) describe() string {
	return fmt.Sprintf("batch %d (records %d to %d, lines %d to %d)", bi.Index+1, bi.First+1, bi.First+bi.N, bi.FirstLine, bi.LastLine)
}

// batcher gathers events into JSON arrays within a call's limits and
// sends each in turn.
type batcher struct {
	m         *Mediation
	j         *journal
	part      string
	trackID   string
	maxEvents int
	maxBytes  int
	buf       bytes.Buffer
	cur       batchInfo
	index     int
}

// add appends one encoded event, sending the batch first if the event
// would not fit.
func (b *batcher) add(ctx context.Context, r row, ev []byte) error {
	if b.cur.N == b.maxEvents || b.buf.Len()+1+len(ev)+1 > b.maxBytes {
		if err := b.flush(ctx); err != nil {
			return err
		}
	}
	sep := byte(',')
	if b.cur.N == 0 {
		sep = '['
		b.cur = batchInfo{Index: b.index, First: r.Index, FirstLine: r.Line, AcceptedBef: r.Index}
	}
	b.buf.WriteByte(sep)
	b.buf.Write(ev)
	b.cur.N++
	b.cur.LastLine = r.Line
	return nil
}

// flush sends the batch, if it has any event: noted in the journal first,
// then sent until an answer says what became of it, which the journal
// notes too. A batch whose fate is unknown stays pending in the journal.
func (b *batcher) flush(ctx context.Context) error {
	if b.cur.N == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b.buf.WriteByte(']')
	bi := b.cur
	if err := b.j.sending(bi); err != nil {
		return err
	}
	f, err := b.send(ctx, bi, bytes.Clone(b.buf.Bytes()))
	b.buf.Reset()
	b.cur = batchInfo{}
	b.index++
	switch f {
	case taken:
		if jerr := b.j.answered(true); jerr != nil {
			return jerr
		}
	case notTaken:
		if jerr := b.j.answered(false); jerr != nil {
			return jerr
		}
	}
	return err
}

// fate is what is known of a batch after a call.
type fate int

const (
	unknown  fate = iota // sent, and no answer says what became of it
	taken                // answered 200: accepted for processing
	notTaken             // refused, or never reached the meter
)

// send makes the call for one batch until it is taken, or Zuora says it
// was not and will not be, or the attempts run out. A batch whose answer
// was lost is sent again only with a dedupe field; otherwise send returns
// an *UnknownFate.
func (b *batcher) send(ctx context.Context, bi batchInfo, body []byte) (fate, error) {
	c := b.m.c
	dedupe := b.m.Event.DedupeField != ""
	// A call under way is let finish for a while when ctx is cancelled,
	// so that a stop lands between two batches rather than on a lost
	// answer; within the unit's 60 s TimeoutStopSec.
	callCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	defer context.AfterFunc(ctx, func() {
		t := time.AfterFunc(stopGrace, cancel)
		context.AfterFunc(callCtx, func() { t.Stop() })
	})()
	for attempt := 0; ; attempt++ {
		_, err := c.do(callCtx, call{
			op: "mediation", method: http.MethodPost, url: "/usage/bulk/" + url.PathEscape(b.m.Meter),
			body: jsonBody(body), trackID: b.trackID, attempts: 1,
		})
		if err == nil {
			return taken, nil
		}
		var e *Error
		if !errors.As(err, &e) {
			e = &Error{Op: "mediation", Message: err.Error(), Err: err}
		}
		f := unknown
		if notSent(e) || refused(e) {
			f = notTaken
		}
		switch {
		case f == notTaken && !e.Retryable:
			return f, &Error{Op: "mediation", HTTPStatus: e.HTTPStatus, Code: e.Code, Err: e,
				Message: fmt.Sprintf("%s: %s was refused: %s. %s", b.part, bi.describe(), e.Message, acceptedBefore(bi))}
		case f == unknown && !dedupe:
			return f, bi.unknown(b.part, e)
		case attempt+1 >= c.cfg.MaxAttempts:
			return f, &Error{Op: "mediation", HTTPStatus: e.HTTPStatus, Code: e.Code, Err: e, Retryable: true,
				Message: fmt.Sprintf("%s: %s: %s (after %d attempts). %s", b.part, bi.describe(), e.Message, attempt+1, acceptedBefore(bi))}
		}
		c.log.Warn("mediation batch not taken, will retry", "part", b.part, "batch", bi.Index+1, "attempt", attempt+1,
			"status", e.HTTPStatus, "error", e.Message, "fate_known", f == notTaken)
		if err := c.sleep(ctx, attempt, e.RetryAfter); err != nil {
			return f, err
		}
	}
}

// stopGrace is how long a batch under way may take once Submit's context
// is cancelled.
const stopGrace = 30 * time.Second

// refused reports whether Zuora answered that it did not take the
// request: a 4xx other than a timeout or a conflict, or a 200 that says
// success:false.
func refused(e *Error) bool {
	s := e.HTTPStatus
	return s >= 200 && s < 500 && s != http.StatusRequestTimeout && s != http.StatusConflict
}

// notSent reports whether a failed call is known not to have reached the
// meter: a rate or concurrency limit, the token call, or a connection that
// was never made.
func notSent(e *Error) bool {
	if e.HTTPStatus == http.StatusTooManyRequests || e.Op == "token" {
		return true
	}
	var op *net.OpError
	return e.HTTPStatus == 0 && errors.As(e.Err, &op) && op.Op == "dial"
}

func acceptedBefore(bi batchInfo) string {
	if bi.AcceptedBef == 0 {
		return "No record before it was sent; nothing after it was sent."
	}
	return fmt.Sprintf("Records 1 to %d were accepted for processing before it; nothing after it was sent.", bi.AcceptedBef)
}

// journal records, beside a part, which of its batches were sent and
// answered, so that no batch is ever sent twice across Submits, restarts
// and crashes. Lines are appended and synced:
//
//	usagedrop-mediation 1 KEY       the part key it belongs to
//	send INDEX FIRST N LINE1 LINE2  a batch about to be sent
//	ok                              the batch above was accepted
//	clear                           the batch above was refused: not taken
//
// A last line cut off by a crash is ignored: a cut "send" was never sent,
// a cut "ok" leaves the batch's fate unknown, which is the truth for the
// journal's reader.
type journal struct {
	f        *os.File
	accepted int        // records accepted, in order from the first
	batches  int        // batches sent so far, answered or not
	pending  *batchInfo // a batch sent and not answered
}

const journalMagic = "usagedrop-mediation 1"

func openJournal(path, key string) (*journal, error) {
	j := &journal{}
	body, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read the send journal: %w", err)
	}
	lines := strings.SplitAfter(string(body), "\n")
	if len(lines) == 0 || lines[0] != journalMagic+" "+key+"\n" {
		// None yet, or another key's (a new generation of the drop).
		if err := atomicfile.WriteBytes(path, 0o600, []byte(journalMagic+" "+key+"\n")); err != nil {
			return nil, fmt.Errorf("start the send journal: %w", err)
		}
		lines = nil
	}
	for _, line := range lines[min(1, len(lines)):] {
		if !strings.HasSuffix(line, "\n") {
			break
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 6 && f[0] == "send":
			var n [5]int
			for i := range n {
				n[i], _ = strconv.Atoi(f[i+1])
			}
			j.pending = &batchInfo{Index: n[0], First: n[1], N: n[2], FirstLine: n[3], LastLine: n[4], AcceptedBef: j.accepted}
			j.batches = n[0] + 1
		case len(f) == 1 && f[0] == "ok" && j.pending != nil:
			j.accepted = j.pending.First + j.pending.N
			j.pending = nil
		case len(f) == 1 && f[0] == "clear" && j.pending != nil:
			j.batches = j.pending.Index
			j.pending = nil
		}
	}
	if j.f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		return nil, fmt.Errorf("open the send journal: %w", err)
	}
	return j, nil
}

// resume is the index of the first record not yet accepted, or of the
// pending batch's first record (sent again only with a dedupe field).
func (j *journal) resume() int {
	if j.pending != nil {
		return j.pending.First
	}
	return j.accepted
}

func (j *journal) sending(bi batchInfo) error {
	return j.append(fmt.Sprintf("send %d %d %d %d %d\n", bi.Index, bi.First, bi.N, bi.FirstLine, bi.LastLine))
}

func (j *journal) answered(taken bool) error {
	if taken {
		return j.append("ok\n")
	}
	return j.append("clear\n")
}

func (j *journal) append(line string) error {
	w := bufio.NewWriter(j.f)
	w.WriteString(line)
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write the send journal %s: %w", filepath.Base(j.f.Name()), err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("sync the send journal %s: %w", filepath.Base(j.f.Name()), err)
	}
	return nil
}

func (j *journal) Close() error { return j.f.Close() }
