package testutil

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// SQS is an in-process SQS queue speaking the AWS JSON 1.0 protocol of
// aws-sdk-go-v2: ReceiveMessage with long polling, DeleteMessage and
// DeleteMessageBatch. A test plays S3 and Sends the event notifications.
type SQS struct {
	// URL is the endpoint; QueueURL names the one queue.
	URL, QueueURL string

	mu       sync.Mutex
	visible  []sqsMessage
	inFlight map[string]sqsMessage // by receipt handle
	arrived  chan struct{}         // closed and replaced on each Send
	next     int
}

type sqsMessage struct {
	MessageID     string `json:"MessageId"`
	ReceiptHandle string `json:"ReceiptHandle"`
	Body          string `json:"Body"`
	MD5OfBody     string `json:"MD5OfBody"`
}

// NewSQS starts an empty queue; it stops when the test ends.
func NewSQS(t testing.TB) *SQS {
	t.Helper()
	q := &SQS{inFlight: map[string]sqsMessage{}, arrived: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(q.serve))
	t.Cleanup(srv.Close)
	q.URL, q.QueueURL = srv.URL, srv.URL+"/000000000000/drops"
	return q
}

// Send puts a message on the queue.
func (q *SQS) Send(body string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.next++
	sum := md5.Sum([]byte(body))
	q.visible = append(q.visible, sqsMessage{MessageID: strconv.Itoa(q.next),
		ReceiptHandle: "rh-" + strconv.Itoa(q.next), Body: body, MD5OfBody: hex.EncodeToString(sum[:])})
	close(q.arrived)
	q.arrived = make(chan struct{})
}

// Len counts the messages not yet deleted, visible or in flight.
func (q *SQS) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.visible) + len(q.inFlight)
}

func (q *SQS) serve(w http.ResponseWriter, r *http.Request) {
	var in struct {
		MaxNumberOfMessages int
		WaitTimeSeconds     int
		ReceiptHandle       string
		Entries             []struct{ Id, ReceiptHandle string }
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		sqsError(w, "InvalidParameterValue", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	switch target := r.Header.Get("X-Amz-Target"); target {
	case "AmazonSQS.ReceiveMessage":
		msgs := q.receive(r, max(in.MaxNumberOfMessages, 1), time.Duration(in.WaitTimeSeconds)*time.Second)
		json.NewEncoder(w).Encode(map[string]any{"Messages": msgs})
	case "AmazonSQS.DeleteMessage":
		q.delete(in.ReceiptHandle)
		w.Write([]byte("{}"))
	case "AmazonSQS.DeleteMessageBatch":
		var ok []map[string]string
		for _, e := range in.Entries {
			q.delete(e.ReceiptHandle)
			ok = append(ok, map[string]string{"Id": e.Id})
		}
		json.NewEncoder(w).Encode(map[string]any{"Successful": ok, "Failed": []any{}})
	default:
		sqsError(w, "UnsupportedOperation", fmt.Sprintf("%q is not served by the test queue", target))
	}
}

// receive long-polls for up to wait, then takes up to n messages.
func (q *SQS) receive(r *http.Request, n int, wait time.Duration) []sqsMessage {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		q.mu.Lock()
		if len(q.visible) > 0 || wait == 0 {
			n = min(n, len(q.visible))
			msgs := q.visible[:n:n]
			q.visible = q.visible[n:]
			for _, m := range msgs {
				q.inFlight[m.ReceiptHandle] = m
			}
			q.mu.Unlock()
			return msgs
		}
		arrived := q.arrived
		q.mu.Unlock()
		select {
		case <-arrived:
		case <-deadline.C:
			wait = 0
		case <-r.Context().Done():
			return nil
		}
	}
}

func (q *SQS) delete(handle string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.inFlight, handle)
}

func sqsError(w http.ResponseWriter, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(http.StatusBadRequest)
	json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.sqs#" + code, "message": msg})
}

// S3Event is the body S3 sends to a queue when key is created in bucket;
// like S3, it form-encodes the key ("March 2026.csv" → "March+2026.csv").
func S3Event(bucket, key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.QueryEscape(s)
	}
	key = strings.Join(segs, "/")
	b, _ := json.Marshal(map[string]any{"Records": []any{map[string]any{
		"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
		"s3": map[string]any{"bucket": map[string]string{"name": bucket}, "object": map[string]any{"key": key}},
	}}})
	return string(b)
}
