package web

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"usagedrop/internal/testutil"
	"usagedrop/ledger/postgres"
)

// On a fleet's shared ledger the list and a drop's page say which
// instance holds each drop; on a ledger of one daemon they say nothing of
// it (the other tests).
func TestFleetOwnerShown(t *testing.T) {
	dsn := testutil.Postgres(t).DSN
	open := func(instance string) *postgres.Store {
		s, err := postgres.Open(context.Background(), dsn, postgres.Options{Instance: instance, Lease: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open("vm-a"), open("vm-b")
	ea, err := a.Create("finance", "april.csv", "april.csv", 10, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Create("finance", "may.csv", "may.csv", 10, "", false); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	Register(mux, Options{Ledger: b})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(p string) string {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	list := get("/")
	for _, want := range []string{"april.csv", "on vm-a", "may.csv", "on vm-b"} {
		if !strings.Contains(list, want) {
			t.Errorf("the list does not show %q", want)
		}
	}
	if page := get("/drops/" + ea.ID); !strings.Contains(page, "<dt>Instance</dt><dd>vm-a holds it</dd>") {
		t.Errorf("vm-a's drop's page, read on vm-b, does not say vm-a holds it:\n%s", page)
	}
}
