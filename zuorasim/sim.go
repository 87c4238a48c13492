package zuorasim

import (
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure a Sim. The zero value accepts any credentials,
// account, unit of measure and custom field; the rules of doc.go apply
// whatever the options.
type Options struct {
	Accounts []string // account numbers that exist; nil accepts any
	UOMs     []string // units of measure configured; nil accepts any
	// CustomFields are the custom fields (Name__c) of the tenant's Usage
	// object, accepted as template columns and object API fields; nil
	// accepts any name ending in __c.
	CustomFields []string
	// ClientID and ClientSecret are the OAuth client, and also the SOAP
	// API user's name and password. Empty accepts any credentials.
	ClientID     string
	ClientSecret string
	// DateFormat is the API user's locale for dates in files:
	// "MM/DD/YYYY" (default, en_US) or "DD/MM/YYYY" (en_GB, en_AU).
	DateFormat string
	// ProcessingDelay is how long an import takes from receipt to its final
	// state; it is Pending for the first half and Processing for the
	// second. Zero means 100ms; negative means at once.
	ProcessingDelay time.Duration
	// TokenTTL is the life of an OAuth token. Zero means 3599s, as Zuora.
	TokenTTL time.Duration
	// AbsoluteStatusURL makes checkImportStatus an absolute URL built from
	// the request's Host, as some tenants answer; the default is the
	// documented relative path.
	AbsoluteStatusURL bool
	// MediationMaxBytes and MediationMaxEvents limit one Mediation call;
	// zero means the API sandbox's 1 MB and 1,000 events.
	MediationMaxBytes  int64
	MediationMaxEvents int
	// MediationSchema is every meter's event definition: field name → type
	// and whether it is required. Nil means ReferenceSchema.
	MediationSchema map[string]EventField
	// MediationDedupeField is the field a Deduplicator on every meter keys
	// on. Empty means no Deduplicator: every event counts, however often
	// it is sent (zuora-api.md, Mediation).
	MediationDedupeField string
	// IdempotencyTTL is how long the answer for an Idempotency-Key is kept.
	// Zero means Zuora's 24 hours; tests of what happens after expiry set
	// it short.
	IdempotencyTTL time.Duration
	// RequestsPerWindow and RateWindow are the rate limit: requests past
	// the limit within a window get 429 with Retry-After until the window
	// ends, and every answer carries ratelimit-* headers. Zero means no
	// limit (and no headers); 2500 a minute is the API sandbox's. RateWindow
	// zero means a minute.
	RequestsPerWindow int
	RateWindow        time.Duration
	// ConcurrencyLimit is how many requests may be in flight at once; one
	// more gets 429 with Concurrency-Limit-Remaining: 0, as Zuora does.
	// Zero means Zuora's default of 40.
	ConcurrencyLimit int
	// SOAPServerURL is the ServerUrl a SOAP login answers; empty means the
	// URL the login was sent to. Tests of a login that points elsewhere
	// set it.
	SOAPServerURL string
	Logger        *slog.Logger
}

// Faults are failures the sim injects. Each count applies to the next N
// requests of its kind and then runs out. Set them with SetFaults.
type Faults struct {
	// TooManyRequests answers the next N requests 429 with Retry-After
	// (whole seconds, rounded up) and the ratelimit-* headers.
	TooManyRequests int
	RetryAfter      time.Duration
	// ServerErrors answers the next N requests 500 with Zuora's JSON body.
	ServerErrors int
	// DropAfterRead makes the next N POST /v1/usage (and SOAP creates,
	// and Mediation calls) read the request and process it (the import
	// exists, its answer is kept for the idempotency key; the events are
	// taken) and then close the connection without answering: the
	// lost-answer case.
	DropAfterRead int
	// AnswerDelay holds the answer of every POST /v1/usage this long after
	// the import was created, so that a client timing out resends while
	// the first request is still in flight (and gets 409).
	AnswerDelay time.Duration
	// Conflicts answers the next N POSTs that carry an Idempotency-Key 409,
	// as Zuora may for a key it has already used.
	Conflicts int
	// FailImports makes the next N imports end Failed, as a tenant-side
	// failure would.
	FailImports int
	// CancelImports makes the next N imports end Canceled, as when
	// somebody cancels them in Zuora's UI.
	CancelImports int
	// StoredServerErrors answers the next N uploads that carry an
	// Idempotency-Key 500 from behind the key, nothing imported: Zuora
	// keeps that answer and replays it for the key ("regardless of
	// whether it succeeded or failed", zuora-api.md, Idempotency-Key).
	StoredServerErrors int
	// StoredServerErrorsImported is StoredServerErrors after the import
	// was created: the worst case, where a retry under the same key can
	// only ever see the 500 while the import runs.
	StoredServerErrorsImported int
	// StoredObjectErrors answers the next N object API records that
	// carry an Idempotency-Key 500 from behind the key, nothing created;
	// StoredObjectErrorsCreated does so after creating the record. Either
	// answer is replayed for the key, as StoredServerErrors's is.
	StoredObjectErrors        int
	StoredObjectErrorsCreated int
	// SOAPFaultsAfterCreate answers the next N SOAP creates with an
	// UNKNOWN_ERROR fault (HTTP 500) after the Import was made: SOAP
	// has no key, so only a look-up by name tells the client it exists.
	SOAPFaultsAfterCreate int
	// Success200False answers the next N uploads HTTP 200 with
	// {"success":false,"reasons":[...]}; nothing is imported.
	Success200False int
	// ExpireTokens invalidates every token and SOAP session issued so far;
	// it acts once, when SetFaults is called.
	ExpireTokens bool
}

// Record is one usage record the sim accepted, normalised: Start and End
// as YYYY-MM-DD, Qty as sent.
type Record struct {
	ImportID       string // the file import's id; "object" or "mediation:<meter>" for the other APIs
	Account        string
	UOM            string
	Qty            string
	Start          string
	End            string
	Subscription   string
	Charge         string
	Description    string
	UniqueKey      string
	RatePlanCharge string
	Event          string // Mediation: the event as received, compact JSON
	// Custom holds the custom fields (Name__c) of the file and object
	// APIs, by name; nil when there are none.
	Custom map[string]string
}

// Import is one file import as the sim sees it.
type Import struct {
	ID             string
	Name           string
	Status         string // Pending, Processing, Completed, Failed, Canceled
	Message        string // StatusReason: why it failed, or a summary
	Imported       int
	Total          int
	Size           int64
	IdempotencyKey string
	Created        time.Time
}

// Sim is an in-process Zuora tenant. It is safe for concurrent use.
type Sim struct {
	opt Options
	log *slog.Logger
	mux *http.ServeMux

	mu       sync.Mutex
	faults   Faults
	tokens   map[string]time.Time // token → expiry
	sessions map[string]time.Time // SOAP session → expiry
	issued   int
	imports  []*imp
	byID     map[string]*imp
	// records holds, in order, a batch per Completed import and per
	// object or Mediation call; batches are never copied into one slice,
	// so a big import costs no more than its own records.
	records  [][]Record
	nrecords int
	idem     map[string]*stored
	seen     map[string]bool // values of the Deduplicator's field per meter
	rejected []RejectedEvent // Mediation events that failed the schema
	requests int
	inFlight int
	// peak is the most requests in flight at once; overLimit counts the
	// requests refused for the concurrency limit. Tests of a fleet's
	// shared limit read both (Limits).
	peak      int
	overLimit int
	// the current rate-limit window
	windowStart time.Time
	windowCount int
}

// New returns a Sim configured by opt.
func New(opt Options) *Sim {
	if opt.DateFormat == "" {
		opt.DateFormat = "MM/DD/YYYY"
	}
	if opt.ProcessingDelay == 0 {
		opt.ProcessingDelay = 100 * time.Millisecond
	}
	if opt.TokenTTL == 0 {
		opt.TokenTTL = 3599 * time.Second
	}
	if opt.MediationMaxBytes == 0 {
		opt.MediationMaxBytes = 1 << 20
	}
	if opt.IdempotencyTTL == 0 {
		opt.IdempotencyTTL = 24 * time.Hour
	}
	if opt.RateWindow == 0 {
		opt.RateWindow = time.Minute
	}
	if opt.ConcurrencyLimit == 0 {
		opt.ConcurrencyLimit = 40
	}
	if opt.MediationMaxEvents == 0 {
		opt.MediationMaxEvents = 1000
	}
	s := &Sim{
		opt:      opt,
		log:      opt.Logger,
		tokens:   map[string]time.Time{},
		sessions: map[string]time.Time{},
		byID:     map[string]*imp{},
		idem:     map[string]*stored{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /oauth/token", s.handleToken)
	s.mux.Handle("POST /v1/usage", s.authed(s.idempotent(s.handleUpload)))
	s.mux.Handle("GET /v1/usage/{id}/status", s.authed(http.HandlerFunc(s.handleStatus)))
	s.mux.Handle("GET /v1/object/import/{id}", s.authed(http.HandlerFunc(s.handleImportObject)))
	// Every POST takes a key (zuora-api.md, Idempotency-Key), the query
	// too: a keyed query replays its first answer, however stale.
	s.mux.Handle("POST /v1/action/query", s.authed(s.idempotent(s.handleQuery)))
	s.mux.Handle("POST /v1/object/usage", s.authed(s.idempotent(s.handleObjectUsage)))
	s.mux.Handle("POST /usage/bulk/{meter}", s.authed(http.HandlerFunc(s.handleMediation)))
	s.mux.HandleFunc("POST /apps/services/a/{version}", s.handleSOAP)
	return s
}

// SetFaults replaces the faults to inject. Counts left over from an
// earlier call are replaced, not added to.
func (s *Sim) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.ExpireTokens {
		clear(s.tokens)
		clear(s.sessions)
		f.ExpireTokens = false
	}
	s.faults = f
}

// Records returns every record of every Completed import, in the order the
// imports completed, and the records the object and Mediation APIs took.
func (s *Sim) Records() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked(time.Now())
	out := make([]Record, 0, s.nrecords)
	for _, batch := range s.records {
		out = append(out, batch...)
	}
	return out
}

// Imports returns every file import in the order received.
func (s *Sim) Imports() []Import {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked(time.Now())
	out := make([]Import, 0, len(s.imports))
	for _, im := range s.imports {
		out = append(out, im.Import)
	}
	return out
}

// addRecordsLocked keeps a batch of accepted records.
func (s *Sim) addRecordsLocked(batch []Record) {
	if len(batch) > 0 {
		s.records = append(s.records, batch)
		s.nrecords += len(batch)
	}
}

// TokensIssued returns how many OAuth tokens the sim has handed out.
func (s *Sim) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

// Requests returns how many requests the sim has received, faults and
// token calls included.
func (s *Sim) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Limits is what the sim saw of its concurrency limit.
type Limits struct {
	// PeakInFlight is the most requests in flight at once, those refused
	// included: a request is in flight from its arrival until its answer
	// is written.
	PeakInFlight int
	// OverConcurrency counts the requests refused 429 for the
	// concurrency limit.
	OverConcurrency int
}

// Limits returns the peak of requests in flight and how many were refused
// for the concurrency limit, since the sim started.
func (s *Sim) Limits() Limits {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Limits{PeakInFlight: s.peak, OverConcurrency: s.overLimit}
}

// ServeHTTP answers one request as Zuora would, after applying the faults
// due.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/_sim/") {
		s.serveInspect(w, r)
		return
	}
	// api.md §Headers: every answer carries Zuora-Request-Id, and a
	// valid Zuora-Track-Id is echoed.
	reqID := newID()
	w.Header().Set("Zuora-Request-Id", reqID[:8]+"-"+reqID[8:12]+"-"+reqID[12:16]+"-"+reqID[16:20]+"-"+reqID[20:])
	if track := r.Header.Get("Zuora-Track-Id"); track != "" {
		if !validTrackID(track) {
			writeReasons(w, http.StatusBadRequest, 90000020, "Zuora-Track-Id must be at most 64 US-ASCII characters without : ; \" '")
			return
		}
		w.Header().Set("Zuora-Track-Id", track)
	}
	release, ok := s.admit(w, r)
	defer release()
	if !ok {
		return
	}
	// api.md §Headers: Content-Encoding and Accept-Encoding gzip.
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			writeReasons(w, http.StatusBadRequest, 90000020, "The body is not gzip: "+err.Error())
			return
		}
		defer gz.Close()
		r.Body, r.ContentLength = gz, -1
		r.Header.Del("Content-Encoding")
	}
	// The Idempotency-Key rules are the REST API's; Mediation lists no
	// key (mediation.go) and SOAP has none.
	if strings.HasPrefix(r.URL.Path, "/v1/") && !s.checkKeyTarget(w, r) {
		return
	}
	s.log.Debug("zuorasim request", "method", r.Method, "path", r.URL.Path, "request_id", w.Header().Get("Zuora-Request-Id"))
	if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		s.mux.ServeHTTP(w, r)
		return
	}
	// Not deferred: a handler that aborts (a dropped answer) must send
	// nothing at all.
	gw := &gzipWriter{ResponseWriter: w, status: http.StatusOK}
	s.mux.ServeHTTP(gw, r)
	gw.finish()
}

// admit applies the tenant's limits and the faults due to one request and
// sets the limit headers (api.md §Limits; [Rate] in doc.go): ratelimit-*
// (not X-RateLimit-*), Concurrency-Limit-*, 429 with Retry-After. When the request goes no further it has been
// answered and ok is false. release must be called when the request ends.
func (s *Sim) admit(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	s.inFlight++
	s.peak = max(s.peak, s.inFlight)
	release = func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}
	now := time.Now()
	if now.Sub(s.windowStart) >= s.opt.RateWindow {
		s.windowStart, s.windowCount = now, 0
	}
	s.windowCount++
	reset := int(math.Ceil(s.windowStart.Add(s.opt.RateWindow).Sub(now).Seconds()))
	concurrent := s.opt.ConcurrencyLimit - s.inFlight
	h := w.Header()
	limited := s.opt.RequestsPerWindow > 0
	if limited {
		h.Set("ratelimit-limit", strconv.Itoa(s.opt.RequestsPerWindow))
		h.Set("ratelimit-remaining", strconv.Itoa(max(s.opt.RequestsPerWindow-s.windowCount, 0)))
		h.Set("ratelimit-reset", strconv.Itoa(reset))
	}
	h.Set("Concurrency-Limit-Type", "Default")
	h.Set("Concurrency-Limit-Limit", strconv.Itoa(s.opt.ConcurrencyLimit))
	h.Set("Concurrency-Limit-Remaining", strconv.Itoa(max(concurrent, 0)))
	f := &s.faults
	switch {
	case concurrent < 0:
		s.overLimit++
		writeReasons(w, http.StatusTooManyRequests, 90000070, "The concurrency limit of the tenant has been reached")
	case limited && s.windowCount > s.opt.RequestsPerWindow:
		h.Set("Retry-After", strconv.Itoa(reset))
		writeReasons(w, http.StatusTooManyRequests, 90000070, "The rate limit of the tenant has been reached")
	case f.TooManyRequests > 0:
		f.TooManyRequests--
		wait := int(math.Ceil(f.RetryAfter.Seconds()))
		h.Set("Retry-After", strconv.Itoa(wait))
		h.Set("ratelimit-remaining", "0")
		h.Set("ratelimit-reset", strconv.Itoa(wait))
		writeReasons(w, http.StatusTooManyRequests, 90000070, "Too many requests")
	case f.ServerErrors > 0 && strings.HasPrefix(r.URL.Path, "/apps/services/"):
		// SOAP answers a server error as a fault, UNKNOWN_ERROR with HTTP
		// 500 (SOAP 1.1), the case issue 8 found classed final.
		f.ServerErrors--
		writeFault(w, "UNKNOWN_ERROR", "An unexpected error occurred (simulated)")
	case f.ServerErrors > 0:
		f.ServerErrors--
		writeReasons(w, http.StatusInternalServerError, 90000060, "Internal Server Error")
	default:
		return release, true
	}
	return release, false
}

// serveInspect answers GET /_sim/imports and GET /_sim/records with what
// Imports and Records return, as JSON, for people and scripts trying the
// sim (`usagedrop sim`). These paths are not Zuora's: they need no token
// and no fault applies to them.
func (s *Sim) serveInspect(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/_sim/imports":
		writeJSON(w, http.StatusOK, s.Imports())
	case "/_sim/records":
		writeJSON(w, http.StatusOK, s.Records())
	default:
		http.NotFound(w, r)
	}
}

// handleToken issues a bearer token for client credentials (api.md
// §OAuth): a form with grant_type=client_credentials and no Authorization
// header; the answer's shape and 3599 s life are Zuora's.
func (s *Sim) handleToken(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "no Authorization header on the token call"})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": err.Error()})
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type", "error_description": "grant_type must be client_credentials"})
		return
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if s.opt.ClientID != "" && (id != s.opt.ClientID || secret != s.opt.ClientSecret) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client", "error_description": "Bad client credentials"})
		return
	}
	tok := newID()
	s.mu.Lock()
	s.tokens[tok] = time.Now().Add(s.opt.TokenTTL)
	s.issued++
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok,
		"token_type":   "bearer",
		"expires_in":   int(s.opt.TokenTTL.Seconds()),
		"scope":        "entity.1a2b3c4d user.5e6f7a8b",
		"jti":          newID(),
	})
}

// authed guards h with a bearer token check; the 401 body is api.md
// §OAuth's.
func (s *Sim) authed(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		exp, known := s.tokens[tok]
		s.mu.Unlock()
		if !ok || !known || time.Now().After(exp) {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Authentication error"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// validTrackID applies Zuora's rule for Zuora-Track-Id: at most 64
// US-ASCII characters, none of : ; " ' (api.md §Headers; [Usage]).
// Control characters: silent, stricter reading, refused.
func validTrackID(s string) bool {
	if len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == ':' || c == ';' || c == '"' || c == '\'' {
			return false
		}
	}
	return true
}

// newID returns 32 lower-case hex digits, the shape of Zuora's ids.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// reason is one entry of the REST API's "reasons" list.
type reason struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// writeReasons answers with the REST API's error body.
func writeReasons(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{
		"success":   false,
		"processId": strings.ToUpper(newID()[:16]),
		"reasons":   []reason{{Code: code, Message: msg}},
	})
}
