package convert

import (
	"bytes"
	"context"
	"io"
	"testing"

	"usagedrop/internal/hostile"
)

// TestCorpusInProcess reads every hostile corpus file in this process and
// holds it to its verdict and the row accounting; the root package's
// TestHostileCorpus runs the same files in child processes to measure
// their memory and time.
func TestCorpusInProcess(t *testing.T) {
	for _, f := range hostile.Corpus() {
		// Under -race the large files cost minutes; the root package's
		// TestHostileCorpus runs every one through a binary built without
		// it, row accounting included.
		if (testing.Short() || raceEnabled()) && len(f.Body) > 1<<20 {
			continue
		}
		t.Run(f.Family+"/"+f.Name, func(t *testing.T) {
			sum, err := WriteTemplate(context.Background(), f.Name, bytes.NewReader(f.Body), int64(len(f.Body)), Options{}, Template{}, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			checkRows(t, sum)
			verdict := "accept"
			if sum.Rejected() {
				verdict = "reject"
			}
			if f.Want != "" && verdict != f.Want {
				t.Fatalf("verdict %s, want %s: %+v", verdict, f.Want, sum.Problems[:min(3, len(sum.Problems))])
			}
			for _, p := range sum.Problems {
				if len(p.Reason) > DefaultCaps().MaxMessageBytes || len(p.Value) > DefaultCaps().MaxValueBytes || len(p.Member) > DefaultCaps().MaxValueBytes {
					t.Fatalf("problem over its caps: %d/%d/%d bytes", len(p.Reason), len(p.Value), len(p.Member))
				}
			}
		})
	}
}
