package convert

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"usagedrop/usage"
)

func TestWriteTemplate(t *testing.T) {
	in := "Account,Unit,Qty,Date,End Date,Description,Unique Key\n" +
		"A1,GB,\"3.5\",14/03/2026,15/03/2026,\"a, \"\"b\"\"\",k1\n" +
		"A2,GB,1,02/03/2026,,plain,k2\n"
	tests := []struct {
		name string
		t    Template
		want string
	}{
		{"classic US", Template{Columns: []string{"ACCOUNT_ID", "UOM", "QTY", "STARTDATE", "ENDDATE", "SUBSCRIPTION_ID", "CHARGE_ID", "DESCRIPTION", "UNIQUE_KEY"}},
			"ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,DESCRIPTION,UNIQUE_KEY\r\n" +
				"A1,GB,3.5,03/14/2026,03/15/2026,,,\"a, \"\"b\"\"\",k1\r\nA2,GB,1,03/02/2026,,,,plain,k2\r\n"},
		{"en_GB reordered", Template{Columns: []string{"UNIQUE_KEY", "ACCOUNT_ID", "UOM", "QTY", "STARTDATE", "ENDDATE", "DESCRIPTION"}, DateFormat: "DD/MM/YYYY"},
			"UNIQUE_KEY,ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,DESCRIPTION\r\nk1,A1,GB,3.5,14/03/2026,15/03/2026,\"a, \"\"b\"\"\"\r\nk2,A2,GB,1,02/03/2026,,plain\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeTemp(t, "in.csv", []byte(in))
			f, _ := os.Open(p)
			defer f.Close()
			var out bytes.Buffer
			sum, err := WriteTemplate(context.Background(), "in.csv", f, int64(len(in)), Options{}, tt.t, &out)
			if err != nil || sum.Rejected() {
				t.Fatalf("err %v, problems %+v", err, sum.Problems)
			}
			if out.String() != tt.want {
				t.Fatalf("got\n%q\nwant\n%q", out.String(), tt.want)
			}
		})
	}
}

func TestWriteTemplateCarries(t *testing.T) {
	in := "ACCOUNT_ID,UOM,QTY,STARTDATE,UNIQUE_KEY\nA1,GB,1,2026-02-03,k1\n"
	f, _ := os.Open(writeTemp(t, "in.csv", []byte(in)))
	defer f.Close()
	var out bytes.Buffer
	sum, err := WriteTemplate(context.Background(), "in.csv", f, int64(len(in)), Options{}, Template{}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Rejected() || sum.Problems[0].Column != "UNIQUE_KEY" || sum.Problems[0].Line != 2 {
		t.Fatalf("want UNIQUE_KEY on line 2 refused by the classic template, got %+v", sum.Problems)
	}
}

func TestNames(t *testing.T) {
	tests := []struct{ dropped, id, want string }{
		{"finance-team-march.xlsx", "1a2b3c4d", "finance-team-march-1a2b3c4d"},
		{"Usage Report (März) FINAL!!.csv", "1a2b3c4d", "usage-report-m-rz-final-1a2b3c4d"},
		{"../../a very long name that goes on and on and on and on.csv", "1a2b3c4d", "a-very-long-name-that-goes-1a2b3c4d"},
		{"....csv", "ab/cd", "usage-ab-cd"},
	}
	ok := regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	for _, tt := range tests {
		n, err := newNames(tt.dropped, tt.id, 50)
		if err != nil {
			t.Fatal(err)
		}
		if n.stem != tt.want {
			t.Errorf("%q: stem %q, want %q", tt.dropped, n.stem, tt.want)
		}
		for _, name := range []string{n.single(".csv"), n.single(".zip"), n.part(122, 123)} {
			if len(name) > 50 || !ok.MatchString(name) {
				t.Errorf("name %q is not a valid upload name", name)
			}
		}
	}
	if _, err := newNames("a.csv", "0123456789abcdef", 20); err == nil {
		t.Error("a name limit too small for the id was accepted")
	}
}

// genCSV writes n template rows of varied, poorly compressible content.
func genCSV(t *testing.T, n int, seed uint64) (string, int64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	var b bytes.Buffer
	b.WriteString(tmplHeader)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "A%08d,GB,%d.%03d,03/%02d/2026,,S-%x,,\"row %d, %x\"\n",
			rng.IntN(1e8), rng.IntN(1e6), rng.IntN(1000), 1+rng.IntN(28), rng.Uint64(), i, rng.Uint64())
	}
	p := writeTemp(t, "big usage.csv", b.Bytes())
	return p, int64(b.Len())
}

// convertPath runs Convert on a file on disk into a fresh dir.
func convertPath(t *testing.T, path string, lim Limits) (*Result, string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	dir := t.TempDir()
	res, err := Convert(context.Background(), filepath.Base(path), "1a2b3c4d", f, st.Size(), Options{}, Template{}, lim, dir)
	if err != nil {
		t.Fatalf("Convert: %v", err)
	}
	return res, dir
}

// partRows opens a part and returns its rows, checking the zip's shape.
func partRows(t *testing.T, p Part) [][]string {
	t.Helper()
	b, err := os.ReadFile(p.Path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != p.Size {
		t.Errorf("%s: size %d, file has %d", p.Name, p.Size, len(b))
	}
	if h := sha256.Sum256(b); hex.EncodeToString(h[:]) != p.SHA256 {
		t.Errorf("%s: sha256 does not match", p.Name)
	}
	if strings.HasSuffix(p.Name, ".zip") {
		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		if len(zr.File) != 1 || strings.ContainsAny(zr.File[0].Name, "/\\") || !strings.HasSuffix(zr.File[0].Name, ".csv") {
			t.Fatalf("%s: want one CSV entry and no directory, got %v", p.Name, zr.File)
		}
		rc, err := zr.File[0].Open()
		if err != nil {
			t.Fatal(err)
		}
		b = readAllBytes(t, rc)
		rc.Close()
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",")+"\n" != tmplHeader {
		t.Fatalf("%s: header %v", p.Name, rows[0])
	}
	return rows[1:]
}

func TestConvertPackaging(t *testing.T) {
	tests := []struct {
		name      string
		rows      int
		maxBytes  int64
		wantParts int // 0: more than one
		wantExt   string
	}{
		{"fits as csv", 100, 0, 1, ".csv"},
		{"zipped", 5000, 256 << 10, 1, ".zip"},
		{"split", 15000, 256 << 10, 0, ".zip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, _ := genCSV(t, tt.rows, uint64(tt.rows))
			res, dir := convertPath(t, path, Limits{MaxBytes: tt.maxBytes})
			if res.Rejected() {
				t.Fatalf("rejected: %+v", res.Problems)
			}
			if tt.wantParts > 0 && len(res.Parts) != tt.wantParts || tt.wantParts == 0 && len(res.Parts) < 2 {
				t.Fatalf("%d parts, want %d", len(res.Parts), tt.wantParts)
			}
			max := tt.maxBytes
			if max == 0 {
				max = usage.MaxFileSize
			}
			total := 0
			for i, p := range res.Parts {
				if p.Size > max || !strings.HasSuffix(p.Name, tt.wantExt) || len(p.Name) > 50 || p.Index != i {
					t.Errorf("part %+v breaks the limits", p)
				}
				if len(res.Parts) > 1 {
					if want := fmt.Sprintf("-p%dof%d.zip", i+1, len(res.Parts)); !strings.HasSuffix(p.Name, want) {
						t.Errorf("part name %s, want suffix %s", p.Name, want)
					}
					if i < len(res.Parts)-1 && p.Size < max*97/100 {
						t.Errorf("part %d holds %d bytes; a split part should be nearly full (%d)", i, p.Size, max)
					}
				}
				rows := partRows(t, p)
				if len(rows) != p.Records {
					t.Errorf("%s: %d rows, Records says %d", p.Name, len(rows), p.Records)
				}
				total += len(rows)
			}
			if total != tt.rows || res.Records != tt.rows {
				t.Fatalf("parts hold %d rows, summary %d, want %d", total, res.Records, tt.rows)
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != len(res.Parts) {
				t.Fatalf("dir holds %d files, want only the %d parts", len(ents), len(res.Parts))
			}
		})
	}
}

func TestConvertRejectedLeavesNothing(t *testing.T) {
	res, dir := convertPath(t, copyFixture(t, "bad-rows.csv"), Limits{})
	if !res.Rejected() || len(res.Parts) != 0 {
		t.Fatalf("want rejected with no parts, got %+v", res)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("dir holds %v after a rejection", ents)
	}
}

// TestConvertWritesOnlyInDir converts a zip holding a compressed workbook,
// which must be inflated somewhere: in dir, and gone afterwards. TMPDIR
// points nowhere, so a write there fails the conversion.
func TestConvertWritesOnlyInDir(t *testing.T) {
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "missing"))
	b := book{rows: [][]any{{"ACCOUNT_ID", "UOM", "QTY", "STARTDATE"}, {"A1", "GB", 1.5, "2026-03-02"}}}.bytes(t)
	path := writeTemp(t, "drop.zip", buildZip(t, zipEntry{name: "usage.xlsx", data: b}))
	res, dir := convertPath(t, path, Limits{})
	if res.Rejected() || len(res.Parts) != 1 || res.Records != 1 {
		t.Fatalf("result %+v", res)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 || ents[0].Name() != res.Parts[0].Name {
		t.Errorf("dir holds %v, want only %s", ents, res.Parts[0].Name)
	}
}

// TestConvertDeterministic converts the same drop twice: a retry after a
// crash must produce the same parts, byte for byte, under the same names.
func TestConvertDeterministic(t *testing.T) {
	path, _ := genCSV(t, 15000, 3)
	a, _ := convertPath(t, path, Limits{MaxBytes: 256 << 10})
	b, _ := convertPath(t, path, Limits{MaxBytes: 256 << 10})
	if len(a.Parts) < 2 || len(a.Parts) != len(b.Parts) {
		t.Fatalf("parts %d and %d, want the same split", len(a.Parts), len(b.Parts))
	}
	for i := range a.Parts {
		if a.Parts[i].Name != b.Parts[i].Name || a.Parts[i].SHA256 != b.Parts[i].SHA256 {
			t.Errorf("part %d differs: %+v vs %+v", i, a.Parts[i], b.Parts[i])
		}
	}
}
