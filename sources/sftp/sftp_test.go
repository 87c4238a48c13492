package sftp

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"usagedrop/internal/testutil"
	"usagedrop/sources"
	"usagedrop/sources/sourcetest"
)

// testSource is a source for dir at addr that trusts only knownHosts and
// no ambient ssh-agent, closed when the test ends.
func testSource(t testing.TB, addr, user, dir, knownHosts string) *Source {
	s := New("sftp-test", addr, user, dir)
	s.KnownHosts, s.Agent, s.Timeout = knownHosts, "", 5*time.Second
	t.Cleanup(func() { s.Close() })
	return s
}

// newSource is a source for dir on the in-process server, by password.
func newSource(t testing.TB, srv *testutil.SFTP, dir string) *Source {
	s := testSource(t, srv.Addr, srv.User, dir, srv.KnownHosts)
	s.Password = srv.Password
	return s
}

// newSshdSource is a source for a folder on the real sshd, by key file.
func newSshdSource(t testing.TB, srv *testutil.Sshd, dir string) *Source {
	s := testSource(t, srv.Addr, srv.User, dir, srv.KnownHosts)
	s.KeyFile = srv.ClientKeyFile
	return s
}

func TestConformance(t *testing.T) {
	sourcetest.Run(t, func(t *testing.T) sourcetest.Store {
		srv := testutil.NewSFTP(t)
		d := &sourcetest.Dir{Root: srv.Root, Deniable: os.Geteuid() != 0}
		d.New = func(t *testing.T, owner string, lease time.Duration) sources.Source {
			s := newSource(t, srv, srv.Root)
			s.Owner, s.Lease = owner, lease
			return s
		}
		return d
	})
}

// TestConformanceSshd runs the suite against OpenSSH's sshd and its
// internal-sftp, logged in as an unprivileged user.
func TestConformanceSshd(t *testing.T) {
	srv := testutil.NewSshd(t)
	sourcetest.Run(t, func(t *testing.T) sourcetest.Store {
		d := &sourcetest.Dir{Root: sshdFolder(t, srv), Chown: true, UID: srv.UID, GID: srv.GID, Deniable: true}
		d.New = func(t *testing.T, owner string, lease time.Duration) sources.Source {
			s := newSshdSource(t, srv, d.Root)
			s.Owner, s.Lease = owner, lease
			return s
		}
		return d
	})
}

// sshdFolder makes an empty folder the sshd user owns.
func sshdFolder(t *testing.T, srv *testutil.Sshd) string {
	dir, err := os.MkdirTemp(srv.Root, "drop-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, srv.UID, srv.GID); err != nil {
		t.Fatal(err)
	}
	return dir
}

// server is what the fault tests need of either test server.
type server interface {
	Stop()
	Start(t testing.TB)
}

// TestServerKilledMidDownload: a download cut by a server crash fails
// (never a short file that looks whole), and after the restart the next
// Open redials and reads the whole file.
func TestServerKilledMidDownload(t *testing.T) {
	// Far larger than what the SSH window lets be in flight, so the kill
	// lands mid-transfer.
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
	t.Run("in-process", func(t *testing.T) {
		srv := testutil.NewSFTP(t)
		testKilledMidDownload(t, srv, newSource(t, srv, srv.Root), srv.Root, body)
	})
	t.Run("sshd", func(t *testing.T) {
		srv := testutil.NewSshd(t)
		dir := sshdFolder(t, srv)
		testKilledMidDownload(t, srv, newSshdSource(t, srv, dir), dir, body)
	})
}

func testKilledMidDownload(t *testing.T, srv server, src *Source, dir string, body []byte) {
	for _, viaWriteTo := range []bool{false, true} {
		killMidDownload(t, srv, src, dir, body, viaWriteTo)
	}
}

func killMidDownload(t *testing.T, srv server, src *Source, dir string, body []byte, viaWriteTo bool) {
	ctx := context.Background()
	if err := os.WriteFile(filepath.Join(dir, "big.csv"), body, 0o644); err != nil {
		t.Fatal(err)
	}
	rc, err := src.Open(ctx, "big.csv")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if _, err := io.ReadFull(rc, make([]byte, 64<<10)); err != nil {
		t.Fatalf("read head: %v", err)
	}
	srv.Stop()
	var rest bytes.Buffer
	if viaWriteTo {
		_, err = io.Copy(&rest, rc) // pkg/sftp's concurrent reads
	} else {
		_, err = rest.ReadFrom(struct{ io.Reader }{rc}) // plain Reads
	}
	rc.Close()
	if err == nil {
		t.Fatalf("read across a server crash returned %d of %d bytes and no error", 64<<10+rest.Len(), len(body))
	}
	srv.Start(t)
	var got []byte
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err = readAll(ctx, src, "big.csv")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond) // the watcher may still be dropping the old connection
	}
	if err != nil {
		t.Fatalf("Open after restart: %v", err)
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("Open after restart read %d bytes, want the whole %d", len(got), len(body))
	}
}

func readAll(ctx context.Context, src *Source, key string) ([]byte, error) {
	rc, err := src.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var b bytes.Buffer
	_, err = io.Copy(&b, rc)
	return b.Bytes(), err
}

// TestRedialBackoff: while the server is down, calls fail fast instead of
// dialling again at once; once it is back, the source recovers by itself.
func TestRedialBackoff(t *testing.T) {
	ctx := context.Background()
	srv := testutil.NewSFTP(t)
	src := newSource(t, srv, srv.Root)
	if _, err := src.List(ctx); err != nil {
		t.Fatalf("List: %v", err)
	}
	srv.Stop()
	deadline := time.Now().Add(5 * time.Second)
	var err error
	for err == nil && time.Now().Before(deadline) {
		_, err = src.List(ctx)
	}
	if err == nil {
		t.Fatal("List kept working with the server down")
	}
	_, err = src.List(ctx) // the first failed dial starts the backoff
	if _, err = src.List(ctx); err == nil || !strings.Contains(err.Error(), "redial in") {
		t.Fatalf("List right after a failed dial: got %v, want a backoff error", err)
	}
	srv.Start(t)
	deadline = time.Now().Add(10 * time.Second)
	for {
		if _, err = src.List(ctx); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("List after the server came back: %v", err)
	}
}

// TestDialHonoursTimeoutAndContext: a server that accepts TCP and then
// says nothing holds a call no longer than Timeout, or than ctx allows.
func TestDialHonoursTimeoutAndContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	known := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(known, nil, 0o600)
	tests := []struct {
		name    string
		timeout time.Duration
		ctx     time.Duration
	}{
		{"timeout", 300 * time.Millisecond, time.Minute},
		{"context", time.Minute, 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New("mute", ln.Addr().String(), "u", "/")
			s.Password, s.KnownHosts, s.Timeout, s.Agent = "pw", known, tt.timeout, ""
			ctx, cancel := context.WithTimeout(context.Background(), tt.ctx)
			defer cancel()
			start := time.Now()
			_, err := s.List(ctx)
			if err == nil {
				t.Fatal("List against a mute server succeeded")
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("List took %s, want about 300ms", took)
			}
		})
	}
}

// TestHostKeyVerification: only the server's own key is accepted, and a
// refusal is fatal and names the host and the fingerprint it saw.
func TestHostKeyVerification(t *testing.T) {
	srv := testutil.NewSFTP(t)
	dir := t.TempDir()
	_, other := testutil.NewKey(t, dir, "")
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	authorized := func(k ssh.PublicKey) string { return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) }
	seen := ssh.FingerprintSHA256(srv.HostKey)
	tests := []struct {
		name, knownHosts, hostKey string
		wantErr                   []string // empty: must connect
	}{
		{"known_hosts right", srv.KnownHosts, "", nil},
		{"pinned right", "", authorized(srv.HostKey), nil},
		{"unknown host", write("empty", ""), "", []string{srv.Addr, seen, "not in"}},
		{"changed key", write("changed", testutil.KnownHostsLine(srv.Addr, other.PublicKey())+"\n"), "",
			[]string{srv.Addr, seen, "does not match"}},
		{"pinned wrong", "", authorized(other.PublicKey()), []string{srv.Addr, seen, ssh.FingerprintSHA256(other.PublicKey())}},
		{"nothing to verify with", "", "", []string{"known_hosts or host_key is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSource(t, srv, srv.Root)
			s.KnownHosts, s.HostKey = tt.knownHosts, tt.hostKey
			_, err := s.List(context.Background())
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("List: %v", err)
				}
				return
			}
			if !errors.Is(err, sources.ErrFatal) {
				t.Fatalf("List: got %v, want ErrFatal", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

func TestAuth(t *testing.T) {
	srv := testutil.NewSFTP(t)
	dir := t.TempDir()
	encrypted, signer := testutil.NewKey(t, dir, "open sesame")
	srv.Authorize(signer.PublicKey())
	sock := startAgent(t, srv)
	tests := []struct {
		name    string
		set     func(*Source)
		wantErr error
	}{
		{"password", func(s *Source) {}, nil},
		{"key file", func(s *Source) { s.Password, s.KeyFile = "", srv.ClientKeyFile }, nil},
		{"key file with passphrase", func(s *Source) { s.Password, s.KeyFile, s.KeyPassphrase = "", encrypted, "open sesame" }, nil},
		{"ssh-agent", func(s *Source) { s.Password, s.Agent = "", sock }, nil},
		{"wrong password", func(s *Source) { s.Password = "nope" }, sources.ErrFatal},
		{"encrypted key, no passphrase", func(s *Source) { s.Password, s.KeyFile = "", encrypted }, sources.ErrFatal},
		{"wrong passphrase", func(s *Source) { s.Password, s.KeyFile, s.KeyPassphrase = "", encrypted, "nope" }, sources.ErrFatal},
		{"no credentials", func(s *Source) { s.Password = "" }, sources.ErrFatal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSource(t, srv, srv.Root)
			tt.set(s)
			_, err := s.List(context.Background())
			if tt.wantErr == nil && err != nil || !errors.Is(err, tt.wantErr) {
				t.Fatalf("List: got %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// startAgent serves an ssh-agent holding a key srv accepts.
func startAgent(t *testing.T, srv *testutil.SFTP) string {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	signer, _ := ssh.NewSignerFromKey(priv)
	srv.Authorize(signer.PublicKey())
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { agent.ServeAgent(keyring, c); c.Close() }()
		}
	}()
	return sock
}

// TestUploadInProgressVisible: a file a partner is still uploading over
// SFTP shows a different size and ETag in each listing, which is what the
// watcher's settle check needs.
func TestUploadInProgressVisible(t *testing.T) {
	ctx := context.Background()
	srv := testutil.NewSFTP(t)
	src := newSource(t, srv, srv.Root)
	partner := newSource(t, srv, srv.Root)
	pc, err := partner.client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f, err := pc.sftp.OpenFile(filepath.Join(srv.Root, "upload.csv"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var seen []sources.Object
	for i := range 3 {
		if _, err := f.Write(bytes.Repeat([]byte("x"), 1000)); err != nil {
			t.Fatal(err)
		}
		objs, err := src.List(ctx)
		if err != nil || len(objs) != 1 {
			t.Fatalf("List during upload = %v, %v", objs, err)
		}
		if objs[0].Size != int64(1000*(i+1)) {
			t.Errorf("listing %d: size %d, want %d", i, objs[0].Size, 1000*(i+1))
		}
		for _, prev := range seen {
			if prev.ETag == objs[0].ETag {
				t.Errorf("listing %d: ETag %q unchanged while the file grew", i, prev.ETag)
			}
		}
		seen = append(seen, objs[0])
	}
}

func TestStringRedactsSecrets(t *testing.T) {
	s := New("n", "h:22", "u", "/in")
	s.Password, s.KeyPassphrase, s.KeyFile = "hunter2-pw", "pass-phrase-1", "/etc/k"
	got := s.String()
	if strings.Contains(got, "hunter2-pw") || strings.Contains(got, "pass-phrase-1") || !strings.Contains(got, "/etc/k") {
		t.Errorf("String() = %q", got)
	}
}

// TestLostConnectionErrors pins which errors drop the cached connection.
func TestLostConnectionErrors(t *testing.T) {
	tests := []struct {
		err  error
		lost bool
	}{
		{sftp.ErrSSHFxConnectionLost, true},
		{io.EOF, true},
		{io.ErrUnexpectedEOF, true},
		{net.ErrClosed, true},
		{os.ErrNotExist, false},
		{os.ErrPermission, false},
	}
	for _, tt := range tests {
		if got := lostConnection(tt.err); got != tt.lost {
			t.Errorf("lostConnection(%v) = %t, want %t", tt.err, got, tt.lost)
		}
	}
}

// BenchmarkOpen reads a 32 MiB file the way the pipeline spools it
// (io.Copy), from the in-process server and from sshd.
func BenchmarkOpen(b *testing.B) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<21)
	run := func(b *testing.B, src *Source, dir string) {
		for _, plainReads := range []bool{false, true} {
			b.Run(map[bool]string{false: "WriteTo", true: "Read"}[plainReads], func(b *testing.B) {
				runOpen(b, src, dir, body, plainReads)
			})
		}
	}
	b.Run("in-process", func(b *testing.B) {
		srv := testutil.NewSFTP(b)
		run(b, newSource(b, srv, srv.Root), srv.Root)
	})
	b.Run("sshd", func(b *testing.B) {
		srv := testutil.NewSshd(b)
		run(b, newSshdSource(b, srv, srv.Root), srv.Root)
	})
}

// slowWriter takes its time over every write, like a slow spool disk.
type slowWriter struct{ n int }

func (w *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(5 * time.Millisecond)
	w.n += len(p)
	return len(p), nil
}

// TestDownloadHonoursContext: cancelling ctx ends a download in progress
// promptly, on the concurrent (WriteTo) path too.
func TestDownloadHonoursContext(t *testing.T) {
	srv := testutil.NewSFTP(t)
	src := newSource(t, srv, srv.Root)
	body := bytes.Repeat([]byte("x"), 16<<20)
	if err := os.WriteFile(filepath.Join(srv.Root, "big.csv"), body, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rc, err := src.Open(ctx, "big.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	w := &slowWriter{}
	_, err = io.Copy(w, rc)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("download after cancel: got %v (%d of %d bytes), want context.Canceled", err, w.n, len(body))
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("download ran %s after cancel", took)
	}
}

// runOpen reads the file b.N times, through WriteTo or plain Reads.
func runOpen(b *testing.B, src *Source, dir string, body []byte, plainReads bool) {
	if err := os.WriteFile(filepath.Join(dir, "big.csv"), body, 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		rc, err := src.Open(context.Background(), "big.csv")
		if err != nil {
			b.Fatal(err)
		}
		var n int64
		if plainReads {
			n, err = io.Copy(io.Discard, struct{ io.Reader }{rc})
		} else {
			n, err = io.Copy(io.Discard, rc)
		}
		rc.Close()
		if err != nil || n != int64(len(body)) {
			b.Fatalf("copied %d bytes, err %v", n, err)
		}
	}
}

// freezer forwards TCP to a target until frozen; then it holds every byte
// without closing anything, as a dead network path does.
type freezer struct {
	ln     net.Listener
	frozen atomic.Bool
}

func newFreezer(t *testing.T, target string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			t.Cleanup(func() { c.Close(); up.Close() })
			go io.Copy(up, f.hold(c))
			go io.Copy(c, f.hold(up))
		}
	}()
	return f
}

// hold wraps r so that nothing passes while the freezer is frozen.
func (f *freezer) hold(r io.Reader) io.Reader {
	return readerFunc(func(p []byte) (int, error) {
		n, err := r.Read(p)
		for f.frozen.Load() {
			time.Sleep(10 * time.Millisecond)
		}
		return n, err
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// TestKeepAliveDropsDeadConnection: when the path to the server goes
// silent without a reset, the keepalive notices, the connection is
// dropped, and the next call redials.
func TestKeepAliveDropsDeadConnection(t *testing.T) {
	ctx := context.Background()
	srv := testutil.NewSFTP(t)
	proxy := newFreezer(t, srv.Addr)
	src := newSource(t, srv, srv.Root)
	src.Address = proxy.ln.Addr().String()
	src.KnownHosts = filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(src.KnownHosts, []byte(testutil.KnownHostsLine(src.Address, srv.HostKey)+"\n"), 0o600)
	src.KeepAlive, src.Timeout = time.Second, time.Second
	if _, err := src.List(ctx); err != nil {
		t.Fatalf("List: %v", err)
	}
	proxy.frozen.Store(true)
	deadline := time.Now().Add(10 * time.Second)
	for {
		src.mu.Lock()
		alive := src.conn != nil
		src.mu.Unlock()
		if !alive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a silent connection was never dropped")
		}
		time.Sleep(100 * time.Millisecond)
	}
	proxy.frozen.Store(false)
	if _, err := src.List(ctx); err != nil {
		t.Fatalf("List after the path came back: %v", err)
	}
}

func TestMissingFolderIsFatal(t *testing.T) {
	srv := testutil.NewSFTP(t)
	src := newSource(t, srv, filepath.Join(srv.Root, "no-such-folder"))
	_, err := src.List(context.Background())
	if !errors.Is(err, sources.ErrFatal) || !strings.Contains(err.Error(), "no-such-folder") {
		t.Fatalf("List of a missing folder: got %v, want ErrFatal naming it", err)
	}
}

// TestRealClientUploadInProgress: while OpenSSH's sftp client uploads a
// file slowly (-l, a bandwidth limit, with small requests so it applies)
// into sshd, listings show it growing,
// which is what the watcher's settle check relies on to wait.
func TestRealClientUploadInProgress(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads for a few seconds")
	}
	client, err := exec.LookPath("sftp")
	if err != nil {
		testutil.Unavailable(t, "OpenSSH sftp client not found")
	}
	srv := testutil.NewSshd(t)
	dir := sshdFolder(t, srv)
	local := filepath.Join(t.TempDir(), "partner.csv")
	body := bytes.Repeat([]byte("2026-03-01,ACC-1,42\n"), 6_000) // 120 kB
	if err := os.WriteFile(local, body, 0o644); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(srv.Addr)
	batch := filepath.Join(t.TempDir(), "batch")
	os.WriteFile(batch, []byte(fmt.Sprintf("put %s %s/partner.csv\n", local, dir)), 0o644)
	upload := exec.Command(client, "-b", batch, "-l", "400", "-B", "4096", "-R", "1", "-P", port, "-i", srv.ClientKeyFile,
		"-o", "UserKnownHostsFile="+srv.KnownHosts, "-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes", srv.User+"@127.0.0.1")
	var out bytes.Buffer
	upload.Stdout, upload.Stderr = &out, &out
	if err := upload.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- upload.Wait() }()

	src := newSshdSource(t, srv, dir)
	ctx := context.Background()
	var sizes []int64
	for finished := false; !finished; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("sftp upload: %v\n%s", err, out.String())
			}
			finished = true
		case <-time.After(300 * time.Millisecond):
		}
		objs, err := src.List(ctx)
		if err != nil {
			t.Fatalf("List during upload: %v", err)
		}
		for _, o := range objs {
			if len(sizes) == 0 || sizes[len(sizes)-1] != o.Size {
				sizes = append(sizes, o.Size)
			}
		}
	}
	t.Logf("sizes seen while uploading: %v", sizes)
	if len(sizes) < 3 {
		t.Errorf("listings saw sizes %v during a slow upload, want it growing", sizes)
	}
	if last := sizes[len(sizes)-1]; last != int64(len(body)) {
		t.Errorf("final size %d, want %d", last, len(body))
	}
	for i := 1; i < len(sizes); i++ {
		if sizes[i] < sizes[i-1] {
			t.Errorf("size went back from %d to %d", sizes[i-1], sizes[i])
		}
	}
}

// TestDropFolderItselfALink: the folder configured on the server may be a
// link the server's admin made; only the daemon's folders must be real.
func TestDropFolderItselfALink(t *testing.T) {
	srv := testutil.NewSFTP(t)
	real := filepath.Join(srv.Root, "real")
	os.MkdirAll(real, 0o755)
	os.Symlink(real, filepath.Join(srv.Root, "drop"))
	os.WriteFile(filepath.Join(real, "a.csv"), []byte("a"), 0o644)
	src := newSource(t, srv, filepath.Join(srv.Root, "drop"))
	ctx := context.Background()
	c := sourcetest.ClaimOnly(t, ctx, src)
	if key, err := src.Finish(ctx, c.Key, sources.Outcome{Imported: true}); err != nil || key != "imported/a.csv" {
		t.Fatalf("Finish = %q, %v", key, err)
	}
	if b, err := os.ReadFile(filepath.Join(real, "imported", "a.csv")); err != nil || string(b) != "a" {
		t.Errorf("imported/a.csv = %q, %v", b, err)
	}
}
