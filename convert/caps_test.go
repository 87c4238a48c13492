package convert

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"usagedrop/config"
)

// The config's limits: section converts to Caps field for field.
var _ = Caps(config.Limits{})

// TestCapsDefaults: every cap has a default, a zero Caps means the
// defaults, and the config example documents each key with its default.
func TestCapsDefaults(t *testing.T) {
	d := DefaultCaps()
	v := reflect.ValueOf(d)
	for i := 0; i < v.NumField(); i++ {
		if v.Field(i).Int() <= 0 {
			t.Errorf("%s has no default", v.Type().Field(i).Name)
		}
	}
	if (Caps{}).WithDefaults() != d {
		t.Fatalf("zero caps are %+v, want the defaults %+v", (Caps{}).WithDefaults(), d)
	}
	example, err := os.ReadFile(filepath.Join("..", "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	lt := reflect.TypeOf(config.Limits{})
	for i := 0; i < lt.NumField(); i++ {
		f := lt.Field(i)
		line := fmt.Sprintf("%s: %d\n", f.Tag.Get("yaml"), v.FieldByName(f.Name).Int())
		if !strings.Contains(string(example), line) {
			t.Errorf("config.example.yaml does not show %q", line)
		}
	}
}

func TestTooLarge(t *testing.T) {
	tests := []struct {
		max, size int64
		want      string
	}{
		{0, 1 << 30, ""},
		{0, 3 << 29, "the file is 1.5 GB, larger than the 1.0 GB usagedrop accepts; split it"},
		{100 << 20, 150 << 20, "the file is 150.0 MB, larger than the 100.0 MB usagedrop accepts"},
		{1000, 2048, "the file is 2 KB, larger than the 1000 bytes usagedrop accepts"},
	}
	for _, tt := range tests {
		got := Caps{MaxFileSize: tt.max}.TooLarge(tt.size)
		if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
			t.Errorf("TooLarge(%d) with max %d = %q, want %q", tt.size, tt.max, got, tt.want)
		}
	}
}
