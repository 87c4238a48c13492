package convert

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"hash/crc32"
	"os"
	"strings"
	"testing"
)

// zipEntry describes one entry of a test zip.
type zipEntry struct {
	name  string
	data  []byte
	mode  os.FileMode
	flags uint16
	lie   uint64 // declared uncompressed size, when not the real one
	store bool
}

// buildZip writes entries with archive/zip, raw where a test needs a
// header that lies.
func buildZip(t *testing.T, entries ...zipEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, e := range entries {
		fh := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.store {
			fh.Method = zip.Store
		}
		if e.mode != 0 {
			fh.SetMode(e.mode)
		}
		if e.lie == 0 && e.flags == 0 {
			w, err := zw.CreateHeader(fh)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(e.data)
			continue
		}
		var comp bytes.Buffer
		fw, _ := flate.NewWriter(&comp, flate.BestCompression)
		fw.Write(e.data)
		fw.Close()
		fh.Flags |= e.flags
		fh.CRC32 = crc32.ChecksumIEEE(e.data)
		fh.CompressedSize64 = uint64(comp.Len())
		fh.UncompressedSize64 = uint64(len(e.data))
		if e.lie != 0 {
			fh.UncompressedSize64 = e.lie
		}
		w, err := zw.CreateRaw(fh)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(comp.Bytes())
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestReadZip(t *testing.T) {
	good := []byte(tmplHeader + "A1,GB,1,2026-03-01,,,,\n")
	zeros := make([]byte, 8<<20)
	tests := []struct {
		name    string
		entries []zipEntry
		records int
		reason  string // a fragment of the one file-level problem; "" when imported
	}{
		{"two members", []zipEntry{{name: "a.csv", data: good}, {name: "b.txt", data: good, store: true}}, 2, ""},
		{"directory flattened, mac junk skipped", []zipEntry{{name: "march/"}, {name: "march/a.csv", data: good}, {name: "__MACOSX/march/._a.csv", data: []byte{0, 1}}, {name: ".DS_Store", data: []byte{0}}}, 1, ""},
		{"traversal", []zipEntry{{name: "a.csv", data: good}, {name: "../a.csv", data: good}}, 0, "outside the archive"},
		{"backslash traversal", []zipEntry{{name: `..\..\a.csv`, data: good}}, 0, "outside the archive"},
		{"absolute", []zipEntry{{name: "/etc/a.csv", data: good}}, 0, "absolute path"},
		{"drive letter", []zipEntry{{name: "C:/a.csv", data: good}}, 0, "absolute path"},
		{"symlink", []zipEntry{{name: "a.csv", data: []byte("/etc/passwd"), mode: os.ModeSymlink | 0o777}}, 0, "symbolic link"},
		{"nested zip", []zipEntry{{name: "inner.zip", data: buildZip(t, zipEntry{name: "a.csv", data: good})}}, 0, "itself an archive"},
		{"encrypted", []zipEntry{{name: "a.csv", data: good, flags: 1}}, 0, "encrypted"},
		{"other file", []zipEntry{{name: "a.pdf", data: good}}, 0, "not a usage file"},
		{"nothing inside", []zipEntry{{name: "d/"}}, 0, "no usage files"},
		{"ratio bomb", []zipEntry{{name: "a.csv", data: zeros}}, 0, "zip bomb"},
		{"declared bomb", []zipEntry{{name: "a.csv", data: good, lie: 3 << 30}}, 0, "zip bomb"},
		{"size lie", []zipEntry{{name: "a.csv", data: append(append([]byte{}, good...), bytes.Repeat([]byte("A1,GB,1,2026-03-01,,,,\n"), 1000)...), lie: uint64(len(good))}}, 0, "declared size"},
		{"bad member named", []zipEntry{{name: "a.csv", data: good}, {name: "b.csv", data: []byte(tmplHeader + "A1,,1,2026-03-01,,,,\n")}}, 1, "UOM is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, sum := readFile(t, writeTemp(t, "drop.zip", buildZip(t, tt.entries...)), Options{})
			if tt.reason == "" {
				if sum.Rejected() || len(recs) != tt.records {
					t.Fatalf("got %d records, problems %+v; want %d records", len(recs), sum.Problems, tt.records)
				}
				return
			}
			if !sum.Rejected() || !strings.Contains(sum.Problems[0].Reason, tt.reason) {
				t.Fatalf("problems %+v, want one containing %q", sum.Problems, tt.reason)
			}
			if tt.records == 0 && len(recs) != 0 {
				t.Fatalf("a refused archive yielded %d records", len(recs))
			}
			if tt.records > 0 && sum.Problems[0].Member != "b.csv" {
				t.Fatalf("problem %+v does not name member b.csv", sum.Problems[0])
			}
		})
	}
}

// TestReadZipDateOrderPerMember reads two members whose date orders differ:
// the same text, 03/04/2026, is 3 April in one and 4 March in the other.
func TestReadZipDateOrderPerMember(t *testing.T) {
	dmy := []byte(tmplHeader + "A1,GB,1,14/03/2026,,,,\nA1,GB,1,03/04/2026,,,,\n")
	mdy := []byte(tmplHeader + "A2,GB,1,03/04/2026,,,,\nA2,GB,1,03/14/2026,,,,\n")
	recs, sum := readFile(t, writeTemp(t, "drop.zip", buildZip(t, zipEntry{name: "eu.csv", data: dmy}, zipEntry{name: "us.csv", data: mdy})), Options{})
	if sum.Rejected() || len(recs) != 4 {
		t.Fatalf("records %+v, problems %+v", recs, sum.Problems)
	}
	if recs[1].Start != "2026-04-03" || recs[2].Start != "2026-03-04" {
		t.Fatalf("03/04/2026 read as %s and %s, want 2026-04-03 then 2026-03-04", recs[1].Start, recs[2].Start)
	}
}
