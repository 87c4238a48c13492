package s3

// Optional low-latency discovery: S3 event notifications delivered to an
// SQS queue. Listing remains the backstop.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"usagedrop/sources"
)

var _ sources.Notifier = (*Source)(nil)

// longPoll is how long one ReceiveMessage waits for a message, the
// longest SQS allows.
const longPoll = 20

// Changed waits for an S3 event on the queue at SQSQueueURL naming a file
// directly under Prefix, and returns nil when one arrives. It deletes every
// message it reads, relevant or not, since the queue serves this source;
// a message about another prefix or about this source's own sub-folders
// is dropped silently. Without SQSQueueURL it returns errors.ErrUnsupported.
func (s *Source) Changed(ctx context.Context) error {
	if s.SQSQueueURL == "" {
		return fmt.Errorf("s3 source %s: no sqs_queue_url: %w", s.name, errors.ErrUnsupported)
	}
	q, err := s.sqs(ctx)
	if err != nil {
		return err
	}
	for {
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(s.SQSQueueURL),
			MaxNumberOfMessages: 10, WaitTimeSeconds: longPoll})
		if err != nil {
			return fmt.Errorf("s3 source %s: receive from %s: %w", s.name, s.SQSQueueURL, classify(err))
		}
		news := false
		for _, m := range out.Messages {
			news = news || s.names(aws.ToString(m.Body))
		}
		if err := s.deleteMessages(ctx, q, out.Messages); err != nil {
			return err
		}
		if news {
			return nil
		}
	}
}

// sqs returns the queue client, made from the same configuration as the
// S3 client.
func (s *Source) sqs(ctx context.Context) (*sqs.Client, error) {
	if _, err := s.s3(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queue == nil {
		s.queue = sqs.NewFromConfig(s.cfg, func(o *sqs.Options) {
			if s.SQSEndpoint != "" {
				o.BaseEndpoint = aws.String(s.SQSEndpoint)
			}
		})
	}
	return s.queue, nil
}

func (s *Source) deleteMessages(ctx context.Context, q *sqs.Client, msgs []sqstypes.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	entries := make([]sqstypes.DeleteMessageBatchRequestEntry, len(msgs))
	for i, m := range msgs {
		entries[i] = sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: m.ReceiptHandle}
	}
	_, err := q.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(s.SQSQueueURL), Entries: entries})
	if err != nil {
		// They come back after the visibility timeout; harmless.
		s.Logger.Warn("delete notifications", "source", s.name, "queue", s.SQSQueueURL, "err", err)
	}
	return nil
}

// event is an S3 event notification, possibly wrapped by SNS.
type event struct {
	Type    string // "Notification" for an SNS envelope
	Message string // the S3 event, inside an SNS envelope
	Records []struct {
		S3 struct {
			Bucket struct {
				Name string `json:"name"`
			} `json:"bucket"`
			Object struct {
				Key string `json:"key"`
			} `json:"object"`
		} `json:"s3"`
	}
}

// names reports whether a message body names a file of this drop folder.
func (s *Source) names(body string) bool {
	var e event
	if json.Unmarshal([]byte(body), &e) != nil {
		return false
	}
	if e.Type == "Notification" {
		return s.names(e.Message)
	}
	for _, r := range e.Records {
		key, err := url.QueryUnescape(r.S3.Object.Key) // S3 form-encodes keys
		if err != nil || r.S3.Bucket.Name != s.Bucket {
			continue
		}
		name, ok := strings.CutPrefix(key, s.prefix())
		if ok && name != "" && !strings.Contains(name, "/") && !sources.Ignored(name) {
			return true
		}
	}
	return false
}
