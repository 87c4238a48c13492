package zuorasim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// maxKeyLen is the longest Idempotency-Key taken. Zuora's guide says the
// key "should be less than 255 characters long"; its API reference says
// "<= 255 characters". The sim takes the stricter: at most 254.
// https://developer.zuora.com/docs/guides/idempotent-requests
const maxKeyLen = 254

// stored is the first answer given for an Idempotency-Key. Until done is
// set the first request is still in flight and a duplicate gets 409.
type stored struct {
	at     time.Time
	target string // method and URL of the first request
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

// idempotent wraps a POST handler with Zuora's Idempotency-Key semantics
// (zuora-api.md, "Headers on every call", quoting
// https://developer.zuora.com/docs/guides/idempotent-requests): the
// status, headers and body of the first answer for a key are stored for
// Options.IdempotencyTTL (24 hours) "regardless of whether it succeeded or
// failed" and replayed for a repeat; a repeat while the first is in
// flight gets 409; a key first used with another method or URL gets 422
// (checkKeyTarget, before any handler). A 500 from behind the key is
// stored too: the client must recover from it (find by name, then a new
// key). Not stored: the 429s and 500s of admit, which answer before any
// handler runs, as a gateway's rate and concurrency limits do; and
// answers to requests whose body was cut off, for which no answer was
// ever given (silent; storing them would make a client that was cut off
// mid-upload wait 24 h).
// It also applies the DropAfterRead fault to fresh uploads.
func (s *Sim) idempotent(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		if key != "" {
			if st, replay := s.claimKey(key, keyTarget(r)); replay {
				switch {
				case st.target != keyTarget(r):
					// Claimed for another target since checkKeyTarget looked.
					writeReasons(w, http.StatusUnprocessableEntity, 90000020, "The Idempotency-Key was used with another URL or method ("+st.target+")")
					return
				case !st.done:
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
				delete(s.idem, key)
			} else {
				st := s.idem[key]
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

// keyTarget is what a key is bound to: the method and URL of its request.
func keyTarget(r *http.Request) string {
	return r.Method + " " + r.URL.RequestURI()
}

// checkKeyTarget applies the header rules every call shares, before any
// route: an Idempotency-Key of more than maxKeyLen characters is refused
// (400); a key stored for another method or URL is refused (422: "a
// mismatch of tenant, URL or method", zuora-api.md, Idempotency-Key); a
// key on a request other than POST or PATCH is refused (400): Zuora says
// not to send one there and is silent on what it does, so the sim takes
// the stricter reading. It reports whether the request may go on.
func (s *Sim) checkKeyTarget(w http.ResponseWriter, r *http.Request) bool {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		return true
	}
	if len(key) > maxKeyLen {
		writeReasons(w, http.StatusBadRequest, 90000020, fmt.Sprintf("Idempotency-Key must be less than 255 characters; it has %d", len(key)))
		return false
	}
	s.mu.Lock()
	st := s.idem[key]
	used := st != nil && time.Since(st.at) <= s.opt.IdempotencyTTL && st.target != keyTarget(r)
	s.mu.Unlock()
	switch {
	case used:
		writeReasons(w, http.StatusUnprocessableEntity, 90000020, fmt.Sprintf("The Idempotency-Key was used with another URL or method (%s)", st.target))
		return false
	case r.Method != http.MethodPost && r.Method != http.MethodPatch:
		writeReasons(w, http.StatusBadRequest, 90000020, "Idempotency-Key is accepted on POST and PATCH requests only")
		return false
	}
	return true
}

// claimKey registers key as in flight for target, or returns a copy of
// what is stored when the key was seen. A Conflicts fault answers as if
// the key were in flight.
func (s *Sim) claimKey(key, target string) (stored, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.Conflicts > 0 {
		s.faults.Conflicts--
		return stored{target: target}, true
	}
	if st := s.idem[key]; st != nil && time.Since(st.at) <= s.opt.IdempotencyTTL {
		return *st, true
	}
	s.idem[key] = &stored{at: time.Now(), target: target}
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
