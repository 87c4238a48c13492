package ledger

import (
	"fmt"
	"path/filepath"
	"testing"
)

func TestListAfter(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "l.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var ids []string
	for i := range 5 {
		e, err := l.Create("s", fmt.Sprint(i), fmt.Sprint(i), 1, "", false)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	tests := []struct {
		after string
		max   int
		want  []string
	}{
		{"", 10, ids},
		{ids[1], 10, ids[2:]},
		{ids[4], 10, nil},
		{ids[1][:10], 10, ids},      // a prefix of every id sorts before them
		{ids[2] + "0", 10, ids[3:]}, // not an id: the ones after it
		{"", 2, ids[:2]},
		{"~", 10, nil},
	}
	for _, tt := range tests {
		var got []string
		err := l.ListAfter(tt.after, func(e *Entry) bool {
			got = append(got, e.ID)
			return len(got) < tt.max
		})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("after %q: %v, want %v", tt.after, got, tt.want)
		}
	}
}

func TestListBefore(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "l.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var ids []string
	for i := range 5 {
		e, err := l.Create("s", fmt.Sprint(i), fmt.Sprint(i), 1, "", false)
		if err != nil {
			t.Fatal(err)
		}
		ids = append([]string{e.ID}, ids...) // newest first
	}
	tests := []struct {
		before string
		max    int
		want   []string
	}{
		{"", 10, ids},
		{ids[1], 10, ids[2:]},
		{ids[4], 10, nil},
		{ids[1][:10], 10, nil},      // a prefix of every id sorts before them
		{ids[2] + "0", 10, ids[2:]}, // not an id: the ones before it
		{"", 2, ids[:2]},
		{"~", 10, ids},
	}
	for _, tt := range tests {
		var got []string
		err := l.ListBefore(tt.before, func(e *Entry) bool {
			got = append(got, e.ID)
			return len(got) < tt.max
		})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("before %q: %v, want %v", tt.before, got, tt.want)
		}
	}
}
