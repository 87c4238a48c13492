package hostile

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strings"
)

// member is one entry of a generated zip.
type member struct {
	name string
	body []byte
	// raw, when set, is written as the entry's compressed bytes under hdr
	// as given: sizes, CRC and flags may lie.
	raw []byte
	hdr *zip.FileHeader
}

// makeZip writes members into a zip, deflated unless a member brings its
// own header.
func makeZip(members ...member) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, m := range members {
		var err error
		switch {
		case m.raw != nil:
			var w io.Writer
			if w, err = zw.CreateRaw(m.hdr); err == nil {
				_, err = w.Write(m.raw)
			}
		case m.hdr != nil:
			var w io.Writer
			if w, err = zw.CreateHeader(m.hdr); err == nil {
				_, err = w.Write(m.body)
			}
		default:
			var w io.Writer
			if w, err = zw.Create(m.name); err == nil {
				_, err = w.Write(m.body)
			}
		}
		if err != nil {
			panic(fmt.Sprintf("hostile: zip %s: %v", m.name, err))
		}
	}
	if err := zw.Close(); err != nil {
		panic(fmt.Sprintf("hostile: zip: %v", err))
	}
	return b.Bytes()
}

// deflate compresses n bytes of the repeated unit.
func deflate(unit []byte, n int) []byte {
	var b bytes.Buffer
	fw, _ := flate.NewWriter(&b, flate.BestCompression)
	for written := 0; written < n; written += len(unit) {
		fw.Write(unit[:min(len(unit), n-written)])
	}
	fw.Close()
	return b.Bytes()
}

// lying is an entry whose header declares size bytes but whose deflated
// data holds n bytes of unit.
func lying(name string, unit []byte, n int, size uint64) member {
	raw := deflate(unit, n)
	crc := crc32.NewIEEE()
	for written := 0; written < n; written += len(unit) {
		crc.Write(unit[:min(len(unit), n-written)])
	}
	return member{name: name, raw: raw, hdr: &zip.FileHeader{
		Name: name, Method: zip.Deflate, CRC32: crc.Sum32(),
		CompressedSize64: uint64(len(raw)), UncompressedSize64: size,
	}}
}

func csvMember(name, body string) member { return member{name: name, body: []byte(body)} }

func zipFile(name, family string, want string, members ...member) File {
	return File{Name: name, Family: family, Body: makeZip(members...), Want: want}
}

// zipFiles are zip drops: many members, bombs, traversal, wide members.
func zipFiles() []File {
	var out []File
	for _, gen := range []func() []File{zipMany, zipBombs, zipPaths, zipDirectories, zipOdd, zipMembersHostile} {
		out = append(out, gen()...)
	}
	return out
}

// zipMany: the entry cap, and a thousand members each too wide to read,
// which made the daemon climb to an OOM kill.
func zipMany() []File {
	many := func(n int, body func(i int) string) []member {
		ms := make([]member, n)
		for i := range ms {
			ms[i] = csvMember(fmt.Sprintf("part-%04d.csv", i), body(i))
		}
		return ms
	}
	wide := []byte(header + strings.Repeat(",x", 500000) + "\n" + row(1) + "\n")
	wideRaw, wideCRC := deflate(wide, len(wide)), crc32.ChecksumIEEE(wide)
	wideMembers := make([]member, 1000)
	for i := range wideMembers {
		// Compressed once, stored a thousand times: the same bytes.
		name := fmt.Sprintf("wide-%04d.csv", i)
		wideMembers[i] = member{name: name, raw: wideRaw, hdr: &zip.FileHeader{Name: name, Method: zip.Deflate,
			CRC32: wideCRC, CompressedSize64: uint64(len(wideRaw)), UncompressedSize64: uint64(len(wide))}}
	}
	return []File{
		zipFile("zip-1000-members.zip", "zip-many", "accept", many(1000, func(i int) string { return header + "\n" + row(i) + "\n" })...),
		zipFile("zip-1001-members.zip", "zip-many", "reject", many(1001, func(i int) string { return header + "\n" + row(i) + "\n" })...),
		zipFile("zip-1000-wide-members.zip", "zip-many", "reject", wideMembers...),
		zipFile("zip-1000-header-only.zip", "zip-many", "reject", many(1000, func(int) string { return header + "\n" })...),
		zipFile("zip-1000-cr-members.zip", "zip-many", "accept", many(1000, func(i int) string { return header + "\r" + row(i) + "\r" })...),
		zipFile("zip-1000-one-bad.zip", "zip-many", "reject", many(1000, func(i int) string {
			if i == 999 {
				return header + "\n" + row(i) + ",shifted\n"
			}
			return header + "\n" + row(i) + "\n"
		})...),
	}
}

// zipBombs: by ratio, by declared total, and by sizes that lie.
func zipBombs() []File {
	zeros := make([]byte, 64<<10)
	line := []byte(row(1) + "\n")
	return []File{
		zipFile("bomb-ratio.zip", "zip-bombs", "reject", lying("zeros.csv", zeros, 20<<20, 20<<20)),
		zipFile("bomb-ratio-csv-rows.zip", "zip-bombs", "reject", member{name: "rows.csv", raw: nil, body: bytes.Repeat(line, 400000)}),
		zipFile("bomb-lies-small.zip", "zip-bombs", "reject", lying("small.csv", line, 4<<20, 100)),
		zipFile("bomb-lies-zero.zip", "zip-bombs", "reject", lying("zero.csv", line, 1<<20, 0)),
		zipFile("bomb-declares-huge.zip", "zip-bombs", "reject", lying("huge.csv", line, 1000, 1<<40)),
		zipFile("bomb-declared-total.zip", "zip-bombs", "reject",
			lying("a.csv", line, 1000, 600<<20), lying("b.csv", line, 1000, 600<<20)),
		zipFile("bomb-under-floor.zip", "zip-bombs", "reject", lying("floor.csv", zeros, 1<<20, 1<<20)),
		zipFile("bomb-many-zeros.zip", "zip-bombs", "reject", func() []member {
			one := lying("z.csv", zeros, 1<<20, 1<<20)
			ms := make([]member, 200)
			for i := range ms {
				hdr := *one.hdr
				hdr.Name = fmt.Sprintf("z%03d.csv", i)
				ms[i] = member{name: hdr.Name, raw: one.raw, hdr: &hdr}
			}
			return ms
		}()...),
	}
}

// zipPaths: names that point outside the archive, or are not files.
func zipPaths() []File {
	ok := header + "\n" + row(1) + "\n"
	link := &zip.FileHeader{Name: "link.csv", Method: zip.Store}
	link.SetMode(os.ModeSymlink | 0o777)
	enc := &zip.FileHeader{Name: "secret.csv", Method: zip.Deflate, Flags: 0x1}
	return []File{
		zipFile("path-dotdot.zip", "zip-paths", "reject", csvMember("../evil.csv", ok)),
		zipFile("path-dotdot-deep.zip", "zip-paths", "reject", csvMember("a/b/../../../evil.csv", ok)),
		zipFile("path-absolute.zip", "zip-paths", "reject", csvMember("/etc/evil.csv", ok)),
		zipFile("path-drive.zip", "zip-paths", "reject", csvMember("C:\\evil.csv", ok)),
		zipFile("path-backslash-dotdot.zip", "zip-paths", "reject", csvMember("..\\evil.csv", ok)),
		zipFile("path-symlink.zip", "zip-paths", "reject", member{name: "link.csv", hdr: link, body: []byte("/etc/passwd")}),
		zipFile("path-encrypted.zip", "zip-paths", "reject", member{name: "secret.csv", hdr: enc, body: []byte(ok)}),
		zipFile("path-nested-zip.zip", "zip-paths", "reject", member{name: "inner.zip", body: makeZip(csvMember("a.csv", ok))}),
		zipFile("path-dirs-flattened.zip", "zip-paths", "accept", csvMember("march/usage/a.csv", ok), csvMember("april/b.csv", header+"\n"+row(2)+"\n")),
		zipFile("path-same-base-name.zip", "zip-paths", "accept", csvMember("a/x.csv", ok), csvMember("b/x.csv", header+"\n"+row(2)+"\n")),
		zipFile("path-macosx-skipped.zip", "zip-paths", "accept", csvMember("__MACOSX/._a.csv", "\x00\x05\x16\x07junk"), csvMember("a.csv", ok)),
		zipFile("path-hidden-skipped.zip", "zip-paths", "accept", csvMember(".DS_Store.csv", "\x00junk"), csvMember("a.csv", ok)),
		zipFile("path-dirs-only.zip", "zip-paths", "reject", csvMember("dir/", ""), csvMember("dir/sub/", "")),
		zipFile("path-not-usage.zip", "zip-paths", "reject", csvMember("readme.pdf", "%PDF")),
		zipFile("path-long-name.zip", "zip-paths", "accept", csvMember(strings.Repeat("n", 60000)+".csv", ok)),
		zipFile("path-control-name.zip", "zip-paths", "accept", csvMember("a\x1b[31m\nb.csv", ok)),
		zipFile("path-invalid-utf8-name.zip", "zip-paths", "accept", csvMember("caf\xe9.csv", ok)),
		zipFile("path-empty-name.zip", "zip-paths", "reject", csvMember("", ok)),
	}
}

// zipDirectories: archives whose directory alone would cost memory to
// read: tens of thousands of entries, or entries with huge names.
func zipDirectories() []File {
	many := make([]member, 20000)
	for i := range many {
		many[i] = member{name: fmt.Sprintf("e%05d.csv", i), hdr: &zip.FileHeader{Name: fmt.Sprintf("e%05d.csv", i), Method: zip.Store}}
	}
	long := make([]member, 80)
	for i := range long {
		long[i] = csvMember(fmt.Sprintf("%05d", i)+strings.Repeat("n", 60000)+".csv", header+"\n"+row(i)+"\n")
	}
	return []File{
		zipFile("dir-20000-entries.zip", "zip-directory", "reject", many...),
		zipFile("dir-huge-names.zip", "zip-directory", "reject", long...),
		{Name: "dir-20000-entries.xlsx", Family: "zip-directory", Body: makeZip(many...), Want: "reject"},
	}
}

// zipOdd: archives that are damaged, empty, or not what their name says.
func zipOdd() []File {
	good := makeZip(csvMember("a.csv", header+"\n"+row(1)+"\n"))
	method := &zip.FileHeader{Name: "m.csv", Method: 12}
	return []File{
		{Name: "zip-empty.zip", Family: "zip-odd", Body: makeZip(), Want: "reject"},
		{Name: "zip-truncated.zip", Family: "zip-odd", Body: good[:len(good)/2], Want: "reject"},
		{Name: "zip-header-only.zip", Family: "zip-odd", Body: []byte("PK\x03\x04"), Want: "reject"},
		{Name: "zip-garbage-after-magic.zip", Family: "zip-odd", Body: append([]byte("PK\x03\x04"), bytes.Repeat([]byte{0xff}, 4096)...), Want: "reject"},
		{Name: "zip-named-csv.csv", Family: "zip-odd", Body: good, Want: "reject"},
		{Name: "zip-not-a-zip.zip", Family: "zip-odd", Body: []byte(header + "\n" + row(1) + "\n"), Want: "reject"},
		{Name: "zip-bad-crc.zip", Family: "zip-odd", Body: func() []byte {
			m := lying("crc.csv", []byte(row(1)+"\n"), 1000, 1000)
			m.hdr.CRC32++
			return makeZip(m)
		}(), Want: "reject"},
		{Name: "zip-method-12.zip", Family: "zip-odd", Body: makeZip(member{name: "m.csv", raw: []byte("BZh9"), hdr: method}), Want: "reject"},
		{Name: "zip-corrupt-deflate.zip", Family: "zip-odd", Body: makeZip(member{name: "c.csv", raw: bytes.Repeat([]byte{0xff}, 100),
			hdr: &zip.FileHeader{Name: "c.csv", Method: zip.Deflate, CompressedSize64: 100, UncompressedSize64: 1000}}), Want: "reject"},
		{Name: "zip-stored.zip", Family: "zip-odd", Body: makeZip(member{name: "s.csv", hdr: &zip.FileHeader{Name: "s.csv", Method: zip.Store}, body: []byte(header + "\n" + row(1) + "\n")}), Want: "accept"},
	}
}

// zipMembersHostile: the CSV families inside a zip, where the member's
// stream is read through the inflate guard.
func zipMembersHostile() []File {
	late := rows(3000, "\n")
	return []File{
		zipFile("member-cr-only.zip", "zip-members", "accept", csvMember("mac.csv", rows(5, "\r"))),
		zipFile("member-late-nul.zip", "zip-members", "reject", csvMember("late.csv", late+"A9,GB,1,2026-03-01,a\x00b\n")),
		zipFile("member-wide-row.zip", "zip-members", "reject", csvMember("wide.csv", header+"\n"+row(1)+",x\n")),
		zipFile("member-huge-cell.zip", "zip-members", "reject", csvMember("cell.csv", header+"\nA1,GB,1,2026-03-01,"+strings.Repeat("c", 300<<10)+"\n")),
		zipFile("member-utf16.zip", "zip-members", "accept", member{name: "u16.csv", body: utf16Bytes(rows(3, "\r\n"), false)}),
		zipFile("member-empty.zip", "zip-members", "reject", csvMember("empty.csv", "")),
		zipFile("member-one-empty-one-good.zip", "zip-members", "", csvMember("empty.csv", ""), csvMember("good.csv", rows(2, "\n"))),
		zipFile("member-xlsx-not-a-zip.zip", "zip-members", "reject", csvMember("book.xlsx", "not a workbook")),
		zipFile("member-duplicate-keys.zip", "zip-members", "reject",
			csvMember("a.csv", "ACCOUNT_ID,UOM,QTY,STARTDATE,UNIQUE_KEY\nA1,GB,1,2026-03-01,k1\n"),
			csvMember("b.csv", "ACCOUNT_ID,UOM,QTY,STARTDATE,UNIQUE_KEY\nA1,GB,1,2026-03-01,k1\n")),
	}
}
