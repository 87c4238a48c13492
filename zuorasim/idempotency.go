package zuorasim

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"time"
)

// stored is the first answer given for an Idempotency-Key. Until done is
// set the first request is still in flight and a duplicate gets 409.
type stored struct {
	at     time.Time
	done   bool
	status int
	header http.Header
	body   []byte
}

// recorder holds a handler's answer so that it can be kept for replay and
// then delivered, delayed or dropped.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newRecorder() *recorder { return &recorder{header: http.Header{}, status: http.StatusOK} }

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(status int)      { r.status = status }

// idempotent wraps a POST handler with Zuora's Idempotency-Key semantics:
// the status, headers and body of the first answer for a key (per path)
// are stored for Options.IdempotencyTTL (24 hours) "regardless of whether
// it succeeded or failed" and replayed for a repeat; a repeat while the
// first is in flight gets 409 (zuora-api.md, "Headers on every call",
// quoting Zuora's Idempotency-Key reference). A 500 from behind the key is
// stored too: that is the strict reading, and the client must recover
// from it (find by name, then a new key). Not stored: the 429s and 500s of
// admit, which answer before any handler runs, as a gateway's rate and
// concurrency limits do; and answers to requests whose body was cut off,
// for which no answer was ever given (the docs are silent; storing them
// would make a client that was cut off mid-upload wait 24 h).
// It also applies the DropAfterRead fault to fresh uploads.
func (s *Sim) idempotent(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		if len(key) > 255 {
			writeReasons(w, http.StatusBadRequest, 90000020, "Idempotency-Key must be at most 255 characters")
			return
		}
		scope := r.URL.Path + "\x00" + key
		if key != "" {
			if st, replay := s.claimKey(scope); replay {
				if !st.done {
					writeReasons(w, http.StatusConflict, 90000050, "A request with the same Idempotency-Key is being processed")
					return
				}
				copyHeader(w.Header(), st.header)
				w.Header().Set("Idempotent-Replayed", "true")
				w.WriteHeader(st.status)
				_, _ = w.Write(st.body)
				return
			}
		}
		rec := newRecorder()
		body := &watchedBody{ReadCloser: r.Body}
		r.Body = body
		h(rec, r)
		drop := false
		s.mu.Lock()
		if key != "" {
			// A request cut off by its client never got an answer to keep.
			if body.broken {
				delete(s.idem, scope)
			} else {
				st := s.idem[scope]
				st.done, st.status, st.header, st.body = true, rec.status, rec.header.Clone(), bytes.Clone(rec.body.Bytes())
			}
		}
		if r.URL.Path == "/v1/usage" && rec.status == http.StatusOK && s.faults.DropAfterRead > 0 {
			s.faults.DropAfterRead--
			drop = true
		}
		s.mu.Unlock()
		if drop {
			s.log.Info("zuorasim dropping the answer", "path", r.URL.Path)
			// Aborting the handler closes the connection without a
			// response, on HTTP/1 and HTTP/2 alike.
			panic(http.ErrAbortHandler)
		}
		copyHeader(w.Header(), rec.header)
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body.Bytes())
	})
}

// claimKey registers scope as in flight, or returns a copy of what is
// stored when the key was seen. A Conflicts fault answers as if the key
// were in flight.
func (s *Sim) claimKey(scope string) (stored, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.Conflicts > 0 {
		s.faults.Conflicts--
		return stored{}, true
	}
	if st := s.idem[scope]; st != nil && time.Since(st.at) <= s.opt.IdempotencyTTL {
		return *st, true
	}
	s.idem[scope] = &stored{at: time.Now()}
	return stored{}, false
}

// watchedBody notes whether reading a request's body failed (the client
// went away mid-request) rather than ending cleanly.
type watchedBody struct {
	io.ReadCloser
	broken bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		b.broken = true
	}
	return n, err
}

func copyHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = append([]string(nil), v...)
	}
}
