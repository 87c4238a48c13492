//go:build !usagedrop_xlsx

package convert

import "io"

// readWorkbook is a stand-in until usagedrop/convert/xlsx provides Rows;
// build with -tags usagedrop_xlsx to use the real reader.
// xlsxBuilt says whether the real workbook reader is compiled in.
const xlsxBuilt = false

func (rd *reader) readWorkbook(member string, r io.ReaderAt, size int64) error {
	return reject("reading .xlsx is not built into this usagedrop; save the sheet as CSV UTF-8")
}
