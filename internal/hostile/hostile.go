// Package hostile generates the corpus of odd and hostile drops that every
// build is tried on: files nobody thought of (odd line ends, huge or deep
// spreadsheets, zip bombs, control characters, wide rows). Each is made by
// code, small on disk, so the corpus costs nothing to keep and can grow
// with every bug found.
//
// The corpus test in the module root (hostile_test.go) runs `usagedrop
// check` on every file in a child process and holds each to the same bar:
// a verdict within its time limit, peak RSS under its memory bound, a
// message under 64 KiB, no panic, and every row accounted for.
package hostile

// File is one generated drop.
type File struct {
	// Name is the file name as dropped; its extension picks the reader.
	Name string
	// Family groups files that test one rule, e.g. "line-ends".
	Family string
	// Body is the file's bytes.
	Body []byte
	// Want is "accept", "reject", or "" when either verdict is right
	// as long as it is clear (fuzz finds).
	Want string
}

// Corpus returns every generated file. Families live one per file beside
// this one, each owning its generator.
func Corpus() []File {
	var out []File
	for _, gen := range []func() []File{csvFiles, zipFiles, xlsxFiles} {
		out = append(out, gen()...)
	}
	return out
}
