package zuorasim

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strconv"
)

// gzipThreshold is the size above which Zuora compresses an answer for a
// client that accepts gzip ([Usage] in doc.go: "compresses responses that
// contain over 1000 bytes").
const gzipThreshold = 1000

// gzipWriter holds an answer until it is known to be over the threshold,
// then compresses it; a smaller answer goes out as it is.
type gzipWriter struct {
	http.ResponseWriter
	status int
	wrote  bool // WriteHeader was called
	buf    bytes.Buffer
	gz     *gzip.Writer
}

func (g *gzipWriter) WriteHeader(status int) {
	if !g.wrote {
		g.status, g.wrote = status, true
	}
}

func (g *gzipWriter) Write(b []byte) (int, error) {
	if g.gz != nil {
		return g.gz.Write(b)
	}
	g.buf.Write(b)
	if g.buf.Len() <= gzipThreshold {
		return len(b), nil
	}
	h := g.ResponseWriter.Header()
	h.Set("Content-Encoding", "gzip")
	h.Del("Content-Length")
	h.Add("Vary", "Accept-Encoding")
	g.ResponseWriter.WriteHeader(g.status)
	g.gz = gzip.NewWriter(g.ResponseWriter)
	if _, err := g.gz.Write(g.buf.Bytes()); err != nil {
		return 0, err
	}
	g.buf.Reset()
	return len(b), nil
}

// finish sends what is held, or ends the compressed stream.
func (g *gzipWriter) finish() {
	if g.gz != nil {
		_ = g.gz.Close()
		return
	}
	g.ResponseWriter.Header().Set("Content-Length", strconv.Itoa(g.buf.Len()))
	g.ResponseWriter.WriteHeader(g.status)
	_, _ = g.ResponseWriter.Write(g.buf.Bytes())
}
