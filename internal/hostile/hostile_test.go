package hostile

import (
	"path"
	"testing"
)

// TestCorpusShape holds the corpus to what its runners assume: unique
// plain names with an extension, a family, a known verdict, and enough
// files.
func TestCorpusShape(t *testing.T) {
	files := Corpus()
	seen := map[string]bool{}
	families := map[string]int{}
	for _, f := range files {
		switch {
		case f.Name == "" || path.Base(f.Name) != f.Name || path.Ext(f.Name) == "":
			t.Errorf("name %q is not a plain file name with an extension", f.Name)
		case seen[f.Name]:
			t.Errorf("name %q twice", f.Name)
		case f.Family == "":
			t.Errorf("%s has no family", f.Name)
		case f.Want != "" && f.Want != "accept" && f.Want != "reject":
			t.Errorf("%s wants %q", f.Name, f.Want)
		}
		seen[f.Name] = true
		families[f.Family]++
	}
	if n := len(csvFiles()) + len(zipFiles()); n < 140 {
		t.Errorf("%d CSV and zip files, want at least 140", n)
	}
	t.Logf("%d files in %d families", len(files), len(families))
}
