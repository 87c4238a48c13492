package xlsx

import (
	"context"
	"errors"
	"io"
)

// Inflating a part and scanning its XML each take about a core on large
// sheets, so one goroutine inflates into a few fixed chunks while the
// reader scans them: the pipeline's memory is bounded by the chunks.
const (
	chunkSize = 256 << 10
	// headroom lies before each chunk's data, so that the unread tail of
	// the previous chunk (a token cut in two) is copied in front of the
	// next one instead of both being copied elsewhere.
	headroom = 64 << 10
	nChunks  = 4
)

type chunk struct {
	mem []byte // data at mem[headroom : headroom+n]
	n   int
	err error // after the data: io.EOF at the end of the part
}

// inflater reads a part in its own goroutine into recycled chunks.
type inflater struct {
	ctx  context.Context
	full chan *chunk
	free chan *chunk
	stop chan struct{}
	done chan struct{}
	err  error // held back until the data before it is consumed
}

func startInflater(ctx context.Context, rc io.ReadCloser) *inflater {
	in := &inflater{
		ctx:  ctx,
		full: make(chan *chunk, nChunks),
		free: make(chan *chunk, nChunks),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	for i := 0; i < nChunks; i++ {
		in.free <- &chunk{mem: make([]byte, headroom+chunkSize)}
	}
	go in.run(rc)
	return in
}

func (in *inflater) run(rc io.ReadCloser) {
	defer close(in.done)
	defer rc.Close()
	for {
		var c *chunk
		select {
		case c = <-in.free:
		case <-in.stop:
			return
		case <-in.ctx.Done():
			return
		}
		n, err := io.ReadFull(rc, c.mem[headroom:])
		c.n, c.err = n, err
		if err == io.ErrUnexpectedEOF {
			c.err = io.EOF // a short last chunk
		}
		last := c.err != nil // c is the reader's once sent
		select {
		case in.full <- c:
		case <-in.stop:
			return
		case <-in.ctx.Done():
			return
		}
		if last {
			return
		}
	}
}

// next returns the next chunk with data, or the error that ends the part.
func (in *inflater) next() (*chunk, error) {
	if in.err != nil {
		return nil, in.err
	}
	select {
	case c := <-in.full:
		if c.err != nil {
			in.err = c.err
			if c.n == 0 {
				return nil, c.err
			}
		}
		return c, nil
	case <-in.ctx.Done():
		return nil, in.ctx.Err()
	}
}

func (in *inflater) release(c *chunk) {
	c.n, c.err = 0, nil
	in.free <- c // never blocks: there are only nChunks chunks
}

// close stops the goroutine and waits for it, so that the part's reader
// is closed when close returns. It is idempotent.
func (in *inflater) close() {
	select {
	case <-in.stop:
	default:
		close(in.stop)
	}
	<-in.done
}

// window is the scanner's view of a part: b[pos:] is not yet consumed.
type window struct {
	part  string // the part's name, for errors
	max   int    // the longest token or element that must be whole in b
	src   *inflater
	b     []byte
	pos   int
	cur   *chunk // the chunk b lies in, nil when b is spill
	spill []byte // holds a tail too long for the headroom
	eof   bool
}

// fill appends the next chunk to the unread bytes. It returns io.EOF at
// the end of the part and any error of inflating it.
func (w *window) fill() error {
	if w.eof {
		return io.EOF
	}
	tail := w.b[w.pos:]
	if len(tail) > w.max {
		return overPart(w.part, "the part has an XML element longer than %d bytes", w.max)
	}
	c, err := w.src.next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			w.eof = true
		}
		return err
	}
	data := c.mem[headroom : headroom+c.n]
	if len(tail) <= headroom {
		start := headroom - len(tail)
		copy(c.mem[start:], tail)
		w.b = c.mem[start : headroom+c.n]
	} else {
		w.spill = append(append(w.spill[:0], tail...), data...)
		w.b = w.spill
	}
	if w.cur != nil {
		w.src.release(w.cur)
	}
	w.cur = c
	if len(tail) > headroom {
		w.src.release(c)
		w.cur = nil
	}
	w.pos = 0
	return nil
}
