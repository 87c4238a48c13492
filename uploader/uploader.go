// Package uploader sends usage parts to Zuora and follows them to their end.
//
// One HTTP client (client.go) owns what every Zuora call needs: the OAuth
// token, the tracking headers, rate limits and retries. Each Zuora API is
// one Uploader in a file of its own: file import (POST /v1/usage), the
// object API, Mediation ingest and the SOAP Import.
package uploader

import (
	"context"
	"errors"
	"time"
)

// Part is one file in Zuora's usage template (CSV, or a zip holding one
// CSV), ready to send.
type Part struct {
	Name    string // upload file name, at most 50 characters
	Path    string // file on disk
	Size    int64
	SHA256  string // hex
	Records int
}

// Receipt identifies a submitted part at Zuora. It is stored in the ledger,
// so every field must survive a restart.
type Receipt struct {
	API       string // "file", "object", "mediation", "soap"
	ImportID  string // Zuora's id for the import, when known
	StatusURL string // absolute URL to poll, when the API has one
	RequestID string // Zuora-Request-Id of the submit
	TrackID   string // Zuora-Track-Id we sent
}

// State is where Zuora says an import is.
type State string

// Import states as Zuora names them. Only Completed is success.
const (
	Pending    State = "Pending"
	Processing State = "Processing"
	Completed  State = "Completed"
	Canceled   State = "Canceled"
	Failed     State = "Failed"
)

// Final reports whether the import will not change state again.
func (s State) Final() bool { return s == Completed || s == Canceled || s == Failed }

// Status is one answer from polling an import.
type Status struct {
	State    State
	Message  string // Zuora's words, for the report
	Imported int    // records imported, when Zuora says
	Total    int    // records read, when Zuora says
}

// Uploader sends parts to one Zuora API.
//
// Submit sends p under idempotencyKey. Sending the same part again with the
// same key must be safe: Zuora replays its first answer (or answers 409
// while it is still working on it), and Submit returns the same Receipt.
// Submit retries what is safe to retry on its own; the error it returns is
// an *Error that says whether a later retry may succeed.
//
// Status asks Zuora where the import of r stands. It does not wait for a
// final state; the caller polls.
type Uploader interface {
	Submit(ctx context.Context, p Part, idempotencyKey string) (Receipt, error)
	Status(ctx context.Context, r Receipt) (Status, error)
}

// Finder is implemented by uploaders that can look an import up by the name
// it was uploaded under, for when a submit's answer was lost and its
// idempotency key may have expired. Find returns ok=false when Zuora has no
// import of that name.
type Finder interface {
	Find(ctx context.Context, name string) (r Receipt, ok bool, err error)
}

// Error is a failed call to Zuora.
type Error struct {
	Op         string        // "token", "submit", "status", ...
	HTTPStatus int           // 0 when no response came
	Code       string        // Zuora's error code, when given
	Message    string        // Zuora's message, or the transport error
	Retryable  bool          // a later attempt may succeed
	RetryAfter time.Duration // what Zuora asked us to wait, if anything
	Err        error         // underlying error, if any
}

func (e *Error) Error() string {
	return "zuora " + e.Op + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// IsRetryable reports whether err may succeed if tried again later.
// Errors that are not *Error (context cancellation, for one) are not.
func IsRetryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Retryable
}
