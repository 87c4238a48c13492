package zuorasim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// A key is bound to the method and URL of its first request: the same key
// elsewhere is 422, a key on a GET is refused, and the length rule takes
// the stricter of Zuora's two pages (less than 255 characters).
func TestIdempotencyKeyRules(t *testing.T) {
	obj := `{"AccountNumber":"A1","UOM":"GB","Quantity":1,"StartDateTime":"2026-03-01T00:00:00"}`
	tests := []struct {
		name        string
		method, url string
		key         string
		want        int
	}{
		{"same key, same URL: replayed", "POST", "/v1/usage", "k-upload", http.StatusOK},
		{"same key, another URL", "POST", "/v1/object/usage", "k-upload", http.StatusUnprocessableEntity},
		{"same key, another query string", "POST", "/v1/usage?x=1", "k-upload", http.StatusUnprocessableEntity},
		{"same key, another method", "PATCH", "/v1/usage", "k-upload", http.StatusUnprocessableEntity},
		{"a key on a GET", "GET", "/v1/usage/nope/status", "k-get", http.StatusBadRequest},
		{"254 characters", "POST", "/v1/object/usage", strings.Repeat("k", 254), http.StatusOK},
		{"255 characters", "POST", "/v1/object/usage", strings.Repeat("m", 255), http.StatusBadRequest},
	}
	e := newEnv(t, Options{})
	e.decode(e.upload("a.csv", []byte(tinyCSV), "k-upload"), http.StatusOK, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var resp *http.Response
			hdr := map[string]string{"Idempotency-Key": tt.key}
			switch {
			case tt.url == "/v1/usage" && tt.method == "POST":
				resp = e.upload("a.csv", []byte(tinyCSV), tt.key)
			case tt.method == "GET":
				resp = e.do(tt.method, tt.url, "", nil, hdr)
			case strings.HasPrefix(tt.url, "/v1/object/"):
				resp = e.do(tt.method, tt.url, "application/json", strings.NewReader(obj), hdr)
			default:
				var buf bytes.Buffer
				resp = e.do(tt.method, tt.url, multipartFile(&buf, "a.csv", []byte(tinyCSV)), &buf, hdr)
			}
			var ans uploadAnswer
			e.decode(resp, tt.want, &ans)
			if tt.want >= 400 && (ans.Success || len(ans.Reasons) != 1) {
				t.Fatalf("refusal without a reason: %+v", ans)
			}
		})
	}
	// Only the first upload and the 254-character record were taken.
	if n, m := len(e.sim.Imports()), len(e.sim.Records()); n != 1 || m < 1 {
		t.Fatalf("%d imports, %d records", n, m)
	}
}

// Every POST takes a key, the query too: a keyed query replays its first
// answer even after the import it looked for has been made.
func TestIdempotencyKeyedQueryReplays(t *testing.T) {
	e := newEnv(t, Options{})
	q, _ := json.Marshal(map[string]string{"queryString": "select Id from Import where Name = 'a.csv'"})
	var first, again struct {
		Size int `json:"size"`
	}
	hdr := map[string]string{"Idempotency-Key": "q1"}
	e.decode(e.do("POST", "/v1/action/query", "application/json", bytes.NewReader(q), hdr), http.StatusOK, &first)
	e.decode(e.upload("a.csv", []byte(tinyCSV), ""), http.StatusOK, nil)
	resp := e.do("POST", "/v1/action/query", "application/json", bytes.NewReader(q), hdr)
	if resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("keyed query not replayed: %v", resp.Header)
	}
	e.decode(resp, http.StatusOK, &again)
	if first.Size != 0 || again.Size != 0 {
		t.Fatalf("sizes %d, %d: want the stale 0 replayed", first.Size, again.Size)
	}
	e.decode(e.do("POST", "/v1/action/query", "application/json", bytes.NewReader(q), nil), http.StatusOK, &again)
	if again.Size != 1 {
		t.Fatalf("unkeyed query size %d, want 1", again.Size)
	}
}
