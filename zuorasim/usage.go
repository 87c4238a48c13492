package zuorasim

import (
	"archive/zip"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"usagedrop/usage"
)

// Zuora's limits on an uploaded file (api.md §File import), the facts
// package usage states; the sim checks them with its own code.
const (
	maxFileSize = usage.MaxFileSize
	maxNameLen  = usage.MaxNameLen
	// maxUnzipped bounds what the sim inflates from one zip entry, so that
	// a zip bomb cannot exhaust a test's memory (sim, not Zuora).
	maxUnzipped = 64 << 20
)

// imp is an import and what it will become once processed.
type imp struct {
	Import
	due     time.Time // when it reaches its final state
	pending []Record  // records to import if it completes
	failure string    // why it fails; empty when it completes
	final   string    // the state it ends in when it does not complete
}

// handleUpload is POST /v1/usage: it takes the file, answers with the
// status URL and leaves the import Pending.
func (s *Sim) handleUpload(w http.ResponseWriter, r *http.Request) {
	name, data, err := readUploadedFile(r)
	if err != nil {
		writeReasons(w, http.StatusBadRequest, 53100020, err.Error())
		return
	}
	s.mu.Lock()
	// api.md §File import: a failure can come as HTTP 200 with
	// success:false.
	if s.faults.Success200False > 0 {
		s.faults.Success200False--
		s.mu.Unlock()
		writeReasons(w, http.StatusOK, 53100320, "The import could not be started (simulated failure)")
		return
	}
	keyed := r.Header.Get("Idempotency-Key") != ""
	if keyed && s.faults.StoredServerErrors > 0 {
		s.faults.StoredServerErrors--
		s.mu.Unlock()
		writeReasons(w, http.StatusInternalServerError, 90000060, "Internal Server Error (simulated, stored under the key)")
		return
	}
	failAfter := keyed && s.faults.StoredServerErrorsImported > 0
	if failAfter {
		s.faults.StoredServerErrorsImported--
	}
	delay := s.faults.AnswerDelay
	s.mu.Unlock()
	im, err := s.newImport(name, name, data, r.Header.Get("Idempotency-Key"), wsdlVersion(r.Header.Get("X-Zuora-WSDL-Version")))
	if err != nil {
		writeReasons(w, http.StatusBadRequest, 53100020, err.Error())
		return
	}
	if failAfter {
		writeReasons(w, http.StatusInternalServerError, 90000060, "Internal Server Error (simulated, after the import was created)")
		return
	}
	// api.md §File import: the answer, once the bytes are received and
	// before processing; checkImportStatus relative or absolute.
	statusURL := "/v1/usage/" + im.ID + "/status"
	if s.opt.AbsoluteStatusURL {
		statusURL = "http://" + r.Host + statusURL
	}
	// Zuora goes on with a request whose client has gone; so does the
	// sim, so that the key stays in flight for the whole delay.
	time.Sleep(delay)
	writeJSON(w, http.StatusOK, map[string]any{"checkImportStatus": statusURL, "size": len(data), "success": true})
}

// newImport unpacks and checks an uploaded file and records it as a
// Pending import called name. The error is for a file refused on receipt
// (not a .csv or .zip by its fileName, a bad zip); problems in its rows
// make the import fail later. wsdl is the API version the call asked for,
// which gates newer columns.
func (s *Sim) newImport(name, fileName string, data []byte, key string, wsdl float64) (*imp, error) {
	csvData, err := unpack(fileName, data)
	if err != nil {
		return nil, err
	}
	im := &imp{Import: Import{
		ID:             newID(),
		Name:           name,
		Status:         "Pending",
		Size:           int64(len(data)),
		IdempotencyKey: key,
		Created:        time.Now(),
	}}
	im.due = im.Created.Add(max(s.opt.ProcessingDelay, 0))
	var problems []string
	im.pending, im.Total, problems = parseUsage(csvData, s.opt, wsdl)
	for i := range im.pending {
		im.pending[i].ImportID = im.ID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case len(problems) > 0:
		im.failure = failureMessage(problems)
	case s.faults.FailImports > 0:
		s.faults.FailImports--
		im.failure = "The import failed on the tenant (simulated failure)"
	case s.faults.CancelImports > 0:
		s.faults.CancelImports--
		im.failure, im.final = "The import was canceled (simulated)", "Canceled"
	}
	s.imports = append(s.imports, im)
	s.byID[im.ID] = im
	s.log.Info("zuorasim import received", "import_id", im.ID, "name", name, "size", len(data), "rows", im.Total)
	return im, nil
}

// readUploadedFile finds the multipart part named "file" and reads it, up
// to one byte past Zuora's limit (api.md §File import: multipart/form-data,
// a part named file with a name of at most 50 characters, at most
// 4,194,304 bytes; the words are seed 000's).
func readUploadedFile(r *http.Request) (string, []byte, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return "", nil, fmt.Errorf("The request must be multipart/form-data with a part named file: %v", err)
	}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return "", nil, errors.New("The request has no part named file")
		}
		if err != nil {
			return "", nil, fmt.Errorf("Cannot read the multipart body: %v", err)
		}
		if p.FormName() != "file" {
			continue
		}
		name := p.FileName()
		if name == "" {
			return "", nil, errors.New("Cannot detect the file name from your Content-Disposition")
		}
		if textLen(name) > maxNameLen {
			return "", nil, fmt.Errorf("The file name %q is longer than the %d character maximum", name, maxNameLen)
		}
		data, err := io.ReadAll(io.LimitReader(p, maxFileSize+1))
		if err != nil {
			return "", nil, fmt.Errorf("Cannot read the file: %v", err)
		}
		if len(data) > maxFileSize {
			return "", nil, errors.New("The file exceeds the maximum file size of 4,194,304 bytes")
		}
		// Read the rest so that the whole request is taken, as Zuora does
		// before it answers.
		_, _ = io.Copy(io.Discard, r.Body)
		return name, data, nil
	}
}

// unpack returns the CSV inside an upload: the file itself, or the one CSV
// in a zip (api.md §File import: .csv, or a zip holding exactly one CSV and
// no directory; seed 000's words "The zip file cannot contain a
// directory").
func unpack(name string, data []byte) ([]byte, error) {
	switch strings.ToLower(path.Ext(name)) {
	case ".csv":
		return data, nil
	case ".zip":
	default:
		return nil, fmt.Errorf("The file %q is not a .csv or .zip file", name)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("The zip file cannot be read: %v", err)
	}
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || strings.Contains(f.Name, "/") || strings.Contains(f.Name, `\`) {
			return nil, errors.New("The zip file cannot contain a directory")
		}
	}
	if len(zr.File) != 1 || !strings.EqualFold(path.Ext(zr.File[0].Name), ".csv") {
		return nil, fmt.Errorf("The zip file must contain exactly one .csv file; it has %d entries", len(zr.File))
	}
	rc, err := zr.File[0].Open()
	if err != nil {
		return nil, fmt.Errorf("The zip entry %s cannot be read: %v", zr.File[0].Name, err)
	}
	defer rc.Close()
	out, err := io.ReadAll(io.LimitReader(rc, maxUnzipped+1))
	if err != nil {
		return nil, fmt.Errorf("The zip entry %s cannot be read: %v", zr.File[0].Name, err)
	}
	if len(out) > maxUnzipped {
		return nil, fmt.Errorf("The zip entry %s is larger than %d bytes unpacked", zr.File[0].Name, maxUnzipped)
	}
	return out, nil
}

// failureMessage is an import's StatusReason for its row problems.
func failureMessage(problems []string) string {
	const shown = 20
	msg := fmt.Sprintf("Import failed: %d error(s): ", len(problems))
	if len(problems) <= shown {
		return msg + strings.Join(problems, "; ")
	}
	return msg + strings.Join(problems[:shown], "; ") + fmt.Sprintf("; and %d more", len(problems)-shown)
}

// handleStatus is the status URL of a file import: success, importStatus
// (Pending, Processing, Completed, Canceled, Failed) and message (api.md
// §File import; the endpoint is undocumented, its shape is from clients).
func (s *Sim) handleStatus(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.advanceLocked(time.Now())
	im := s.byID[r.PathValue("id")]
	var st Import
	if im != nil {
		st = im.Import
	}
	s.mu.Unlock()
	if im == nil {
		writeReasons(w, http.StatusNotFound, 53100040, "The import "+r.PathValue("id")+" does not exist")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "importStatus": st.Status, "message": st.Message})
}

// advanceLocked moves imports along as time passes. Records reach Records
// only when their whole import completes: the import is atomic (api.md
// §File import). Only Completed imports anything.
func (s *Sim) advanceLocked(now time.Time) {
	half := max(s.opt.ProcessingDelay, 0) / 2
	for _, im := range s.imports {
		switch {
		case im.Status != "Pending" && im.Status != "Processing":
		case !now.Before(im.due):
			s.finishLocked(im)
		case now.Sub(im.Created) >= half:
			im.Status = "Processing"
		}
	}
}

func (s *Sim) finishLocked(im *imp) {
	if im.failure != "" {
		im.Status, im.Message, im.Imported = cmp.Or(im.final, "Failed"), im.failure, 0
		im.pending = nil
		s.log.Info("zuorasim import ended without records", "import_id", im.ID, "status", im.Status, "reason", im.failure)
		return
	}
	im.Status, im.Imported = "Completed", len(im.pending)
	im.Message = fmt.Sprintf("Import completed: %d record(s) imported", im.Imported)
	s.addRecordsLocked(im.pending)
	im.pending = nil
	s.log.Info("zuorasim import completed", "import_id", im.ID, "records", im.Imported)
}

// wsdlVersion reads an API version such as "146" or "119.0"; anything
// else is 0, the oldest.
func wsdlVersion(v string) float64 {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil {
		return 0
	}
	return f
}
