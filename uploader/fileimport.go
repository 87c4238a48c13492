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
	"hash"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	"usagedrop/usage"
)

// Zuora's limits on an uploaded file, as package usage states them.
const (
	MaxFileSize = usage.MaxFileSize // bytes
	MaxNameLen  = usage.MaxNameLen  // characters, counted by usage.Len
)

// FileImport sends parts through Zuora's REST file import, POST /v1/usage.
// The import is atomic on Zuora's side: a part is imported whole or not at
// all.
//
// A part is always sent under the idempotency key it was first given, so
// an answer lost to a dropped connection or a timeout is recovered by
// sending again: Zuora replays its first answer, or answers 409 while it
// is still busy with the first request. Submit waits out the 409s; when
// they persist (Zuora may also answer 409 for a key already used), it asks
// Find for the import by its name.
type FileImport struct {
	c *Client
	// ConflictWait is the first wait after a 409; it doubles after each
	// further 409. Zero means 2s.
	ConflictWait time.Duration
	// ConflictTries is how many 409s Submit waits out before it looks the
	// import up by name. Zero means 5.
	ConflictTries int

	// rounds remembers, per part key, the last round of its key chain
	// this process reached, so a retry does not replay the rounds before.
	rounds sync.Map
}

var (
	_ Uploader = (*FileImport)(nil)
	_ Finder   = (*FileImport)(nil)
)

// errPartChanged means the file on disk no longer has the SHA-256 the part
// was made with; sending it would import something nobody checked.
var errPartChanged = errors.New("the part's file changed since it was made")

// NewFileImport returns the file import uploader for c.
func NewFileImport(c *Client) *FileImport {
	return &FileImport{c: c}
}

// statusPath finds the import id in a status URL.
var statusPath = regexp.MustCompile(`/v1/usage/([0-9A-Za-z]+)/status$`)

// maxKeyLen is the longest Idempotency-Key sent. Zuora's guide says a key
// is "less than 255" characters, its API reference "<= 255": the safer
// reading (zuora-api.md, Idempotency-Key).
const maxKeyLen = 254

// maxKeyRounds bounds the keys one part is sent under in one Submit: the
// part's own key, then KEY-r1 ... KEY-r7, each only after a look-up by
// name found no import.
const maxKeyRounds = 8

// Submit uploads p under idempotencyKey and returns the receipt for
// polling. Errors are *Error; a part that breaks Zuora's file rules, or
// whose file changed since it was made, gives a final one without a call.
//
// Zuora stores the first answer under a key, a failure included, and
// replays it for 24 h (zuora-api.md, Idempotency-Key), so a retry under
// the same key can never turn a stored server error into an import. After
// a server error answered under a key, Submit looks the import up by its
// name (the packager's names are unique: they carry the content hash) and
// adopts it when it exists; when it does not, it sends again under the
// next key of the part's chain. A look-up precedes every new key, so a
// part is imported at most once whatever the answers; after a restart the
// chain is walked from its start, a used key replaying its answer.
func (f *FileImport) Submit(ctx context.Context, p Part, idempotencyKey string) (Receipt, error) {
	if err := checkPart(p, idempotencyKey); err != nil {
		return Receipt{}, err
	}
	first, _ := f.rounds.Load(idempotencyKey)
	round, _ := first.(int)
	var last error
	for ; round < maxKeyRounds; round++ {
		key := idempotencyKey
		if round > 0 {
			key = fmt.Sprintf("%s-r%d", idempotencyKey, round)
		}
		f.rounds.Store(idempotencyKey, round)
		r, err := f.submitKey(ctx, p, key)
		if err == nil || !storedFailure(err) {
			return r, err
		}
		last = err
		found, ok, ferr := f.Find(ctx, p.Name)
		if ferr != nil {
			return Receipt{}, ferr
		}
		if ok {
			f.c.log.Info("zuora answered a server error, but the import exists; adopting it", "part", p.Name, "import_id", found.ImportID)
			return found, nil
		}
		f.c.log.Warn("zuora answered a server error under this key and has no import of that name; sending under a new key",
			"part", p.Name, "error", err, "round", round+1)
	}
	return Receipt{}, last
}

// storedFailure reports whether err is an answer Zuora may have stored
// under the request's key and would replay: a server error, or a 200 whose
// success:false carries a code that may clear. A 409, a 429 and a lost
// answer are not: the first request may still be running, or the key is
// still unused.
func storedFailure(err error) bool {
	var e *Error
	if !errors.As(err, &e) || !e.Retryable {
		return false
	}
	return e.HTTPStatus >= 500 || e.HTTPStatus >= 200 && e.HTTPStatus < 300
}

// submitKey uploads p under key, waiting out 409s and looking the import up
// by name when they persist.
func (f *FileImport) submitKey(ctx context.Context, p Part, idempotencyKey string) (Receipt, error) {
	cl := call{
		op:             "submit",
		method:         http.MethodPost,
		url:            "/v1/usage",
		body:           multipartBody(p),
		idempotencyKey: idempotencyKey,
		trackID:        trackIDFor(idempotencyKey),
	}
	wait := cmp.Or(f.ConflictWait, 2*time.Second)
	tries := cmp.Or(f.ConflictTries, 5)
	for conflicts := 0; ; conflicts++ {
		rep, err := f.c.do(ctx, cl)
		if err == nil {
			return f.receipt(p, rep)
		}
		if !isConflict(err) {
			return Receipt{}, err
		}
		if conflicts >= tries {
			break
		}
		f.c.log.Info("zuora is still busy with this idempotency key; waiting", "part", p.Name, "wait", wait, "track_id", cl.trackID)
		if err := sleepCtx(ctx, wait); err != nil {
			return Receipt{}, fmt.Errorf("zuora submit %s: %w", p.Name, err)
		}
		wait *= 2
	}
	r, ok, err := f.Find(ctx, p.Name)
	if err != nil {
		return Receipt{}, err
	}
	if !ok {
		return Receipt{}, &Error{Op: "submit", HTTPStatus: http.StatusConflict, Retryable: true,
			Message: fmt.Sprintf("Zuora keeps answering 409 for the idempotency key of %s and has no import of that name yet", p.Name)}
	}
	r.TrackID = cl.trackID
	f.c.log.Info("zuora answered 409; found the import by name", "part", p.Name, "import_id", r.ImportID)
	return r, nil
}

// checkPart refuses what Zuora's file import would refuse, before any call.
func checkPart(p Part, key string) error {
	fail := func(msg string) error { return &Error{Op: "submit", Message: p.Name + ": " + msg} }
	switch {
	case key == "":
		return fail("no idempotency key; a part is never sent without one")
	case len(key)+len("-r7") > maxKeyLen:
		return fail(fmt.Sprintf("the idempotency key, with the suffix of a resend, is longer than the %d characters Zuora takes", maxKeyLen))
	case p.Name == "" || usage.Len(p.Name) > MaxNameLen:
		return fail(fmt.Sprintf("the upload name must have 1 to %d characters (has %d)", MaxNameLen, usage.Len(p.Name)))
	case contentType(p.Name) == "":
		return fail("the upload name must end in .csv or .zip")
	}
	st, err := os.Stat(p.Path)
	if err != nil {
		return &Error{Op: "submit", Message: fmt.Sprintf("%s: %v", p.Name, err), Err: err}
	}
	if st.Size() > MaxFileSize {
		return fail(fmt.Sprintf("the file has %d bytes; Zuora takes at most %d", st.Size(), MaxFileSize))
	}
	return nil
}

// contentType returns the media type of an upload by its name, or "" for
// a name Zuora's file import does not take.
func contentType(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".csv":
		return "text/csv"
	case ".zip":
		return "application/zip"
	}
	return ""
}

// multipartBody streams p from disk as a multipart/form-data body with one
// part named "file".
func multipartBody(p Part) bodyFunc {
	return streamedMultipart(p, func(mw *multipart.Writer) (string, error) {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename="%s"`, quoteEscaper.Replace(p.Name)))
		h.Set("Content-Type", contentType(p.Name))
		_, err := mw.CreatePart(h)
		return mw.FormDataContentType(), err
	})
}

// bodyFunc returns a fresh request body for each attempt: the body, its
// Content-Type and its length.
type bodyFunc = func() (io.ReadCloser, string, int64, error)

// streamedMultipart streams p's file as the last part of a multipart body
// whose parts before it, and the headers of the file's part, are written
// by head, which returns the body's Content-Type. Head and tail are built
// around the file so that the length is known: the request carries a
// Content-Length (no chunking) and only the file's bytes stream from disk.
// When p has a SHA256, the bytes sent are checked against it before the
// body is closed, so a file changed underneath is never imported.
func streamedMultipart(p Part, head func(*multipart.Writer) (string, error)) bodyFunc {
	return func() (io.ReadCloser, string, int64, error) {
		file, err := os.Open(p.Path)
		if err != nil {
			return nil, "", 0, fmt.Errorf("open %s: %w", p.Path, err)
		}
		st, err := file.Stat()
		if err != nil {
			file.Close()
			return nil, "", 0, fmt.Errorf("stat %s: %w", p.Path, err)
		}
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		ctype, err := head(mw)
		if err != nil {
			file.Close()
			return nil, "", 0, err
		}
		tail := "\r\n--" + mw.Boundary() + "--\r\n"
		var content io.Reader = io.LimitReader(file, st.Size())
		if p.SHA256 != "" {
			content = &verifier{r: content, h: sha256.New(), want: strings.ToLower(p.SHA256), name: p.Path}
		}
		body := io.MultiReader(&buf, content, strings.NewReader(tail))
		length := int64(buf.Len()) + st.Size() + int64(len(tail))
		return readCloser{body, file}, ctype, length, nil
	}
}

var quoteEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

type readCloser struct {
	io.Reader
	io.Closer
}

// verifier hashes what it reads and fails at the end when the sum is not
// the one expected.
type verifier struct {
	r    io.Reader
	h    hash.Hash
	want string
	name string
}

func (v *verifier) Read(b []byte) (int, error) {
	n, err := v.r.Read(b)
	v.h.Write(b[:n])
	if errors.Is(err, io.EOF) && hex.EncodeToString(v.h.Sum(nil)) != v.want {
		return n, fmt.Errorf("%s: %w", v.name, errPartChanged)
	}
	return n, err
}

// receipt reads the answer to an upload.
func (f *FileImport) receipt(p Part, rep *reply) (Receipt, error) {
	var ans struct {
		CheckImportStatus string `json:"checkImportStatus"`
		Size              int64  `json:"size"`
	}
	if err := json.Unmarshal(rep.body, &ans); err != nil || ans.CheckImportStatus == "" {
		// Zuora took the request but the answer is unreadable: the import
		// may exist, so this is not a failure of the part. A later try
		// finds it (by key, or by name once the key has expired).
		return Receipt{}, &Error{Op: "submit", HTTPStatus: rep.status, Retryable: true, Message: fmt.Sprintf("the answer has no checkImportStatus: %.200s", rep.body)}
	}
	if ans.Size != 0 && p.Size != 0 && ans.Size != p.Size {
		f.c.log.Warn("zuora received a different number of bytes than the part has", "part", p.Name, "sent", p.Size, "received", ans.Size, "track_id", rep.trackID)
	}
	r := Receipt{API: "file", StatusURL: f.c.onOurHost(ans.CheckImportStatus), RequestID: rep.requestID, TrackID: rep.trackID}
	if m := statusPath.FindStringSubmatch(strings.SplitN(r.StatusURL, "?", 2)[0]); m != nil {
		r.ImportID = m[1]
	}
	return r, nil
}

// Status polls the import's status URL. Once the import is final it also
// reads the Import object for the record counts; if that read fails the
// status is returned without counts.
func (f *FileImport) Status(ctx context.Context, r Receipt) (Status, error) {
	statusURL := r.StatusURL
	if statusURL == "" && r.ImportID != "" {
		statusURL = "/v1/usage/" + r.ImportID + "/status"
	}
	if statusURL == "" {
		return Status{}, &Error{Op: "status", Message: "the receipt has neither a status URL nor an import id"}
	}
	// A receipt made under another base URL (the configuration changed)
	// is polled on ours: the token stays with the tenant it is for.
	rep, err := f.c.do(ctx, call{op: "status", method: http.MethodGet, url: f.c.onOurHost(statusURL)})
	if err != nil {
		return Status{}, err
	}
	var ans struct {
		ImportStatus string `json:"importStatus"`
		Message      string `json:"message"`
	}
	if err := json.Unmarshal(rep.body, &ans); err != nil || ans.ImportStatus == "" {
		return Status{}, &Error{Op: "status", HTTPStatus: rep.status, Retryable: true, Message: fmt.Sprintf("the answer has no importStatus: %.200s", rep.body)}
	}
	st := Status{State: State(ans.ImportStatus), Message: ans.Message}
	if st.State.Final() && r.ImportID != "" {
		if err := f.counts(ctx, r.ImportID, &st); err != nil {
			f.c.log.Warn("cannot read the import's counts", "import_id", r.ImportID, "error", err)
		}
	}
	return st, nil
}

// counts fills in the record counts from the Import object.
func (f *FileImport) counts(ctx context.Context, id string, st *Status) error {
	rep, err := f.c.do(ctx, call{op: "import", method: http.MethodGet, url: "/v1/object/import/" + id})
	if err != nil {
		return err
	}
	var obj struct {
		StatusReason  string `json:"StatusReason"`
		ImportedCount int    `json:"ImportedCount"`
		TotalCount    int    `json:"TotalCount"`
	}
	if err := json.Unmarshal(rep.body, &obj); err != nil {
		return fmt.Errorf("decode import %s: %w", id, err)
	}
	st.Imported, st.Total = obj.ImportedCount, obj.TotalCount
	st.Message = cmp.Or(st.Message, obj.StatusReason)
	return nil
}

// Find looks up the most recent import uploaded under name with a ZOQL
// query on the Import object. Names are not unique at Zuora: the caller
// should use names that are (the packager's names carry the content hash).
func (f *FileImport) Find(ctx context.Context, name string) (Receipt, bool, error) {
	q := fmt.Sprintf("select Id, Status, CreatedDate from Import where Name = '%s'", zoqlEscaper.Replace(name))
	body, _ := json.Marshal(map[string]string{"queryString": q})
	rep, err := f.c.do(ctx, call{op: "find", method: http.MethodPost, url: "/v1/action/query", body: jsonBody(body)})
	if err != nil {
		return Receipt{}, false, err
	}
	var res struct {
		Records []struct {
			ID          string `json:"Id"`
			CreatedDate string `json:"CreatedDate"`
		} `json:"records"`
	}
	if err := json.Unmarshal(rep.body, &res); err != nil {
		return Receipt{}, false, &Error{Op: "find", HTTPStatus: rep.status, Retryable: true, Message: fmt.Sprintf("cannot read the query answer: %v", err)}
	}
	if len(res.Records) == 0 {
		return Receipt{}, false, nil
	}
	latest := latestImport(len(res.Records), func(i int) string { return res.Records[i].CreatedDate })
	id := res.Records[latest].ID
	return Receipt{API: "file", ImportID: id, StatusURL: f.c.resolve("/v1/usage/" + id + "/status"), RequestID: rep.requestID, TrackID: rep.trackID}, true, nil
}

// zoqlEscaper escapes a ZOQL string literal.
var zoqlEscaper = strings.NewReplacer(`\`, `\\`, `'`, `\'`)

// latestImport returns the index of the most recently created of n
// imports. Ties and unreadable dates go to the one listed later, as Zuora
// lists in creation order.
func latestImport(n int, created func(i int) string) int {
	latest := 0
	for i := 1; i < n; i++ {
		ti, errI := time.Parse(time.RFC3339, created(i))
		tl, errL := time.Parse(time.RFC3339, created(latest))
		if errI != nil || errL != nil || !ti.Before(tl) {
			latest = i
		}
	}
	return latest
}

// jsonBody returns a body func for a small JSON document.
func jsonBody(b []byte) bodyFunc {
	return func() (io.ReadCloser, string, int64, error) {
		return io.NopCloser(bytes.NewReader(b)), "application/json", int64(len(b)), nil
	}
}

// trackIDFor derives the Zuora-Track-Id of a part from its key, so that
// every attempt for one part can be found together in Zuora's logs.
func trackIDFor(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "usagedrop-" + hex.EncodeToString(sum[:12])
}

// isConflict reports whether err is Zuora's 409.
func isConflict(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.HTTPStatus == http.StatusConflict
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
