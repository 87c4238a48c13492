package testutil

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// NewKey makes an ed25519 key pair and writes the private key in OpenSSH
// format to a file in dir, encrypted when passphrase is not empty.
func NewKey(t testing.TB, dir, passphrase string) (path string, signer ssh.Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "usagedrop test")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "usagedrop test", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "id_ed25519_"+randHex(3))
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err = ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return path, signer
}

// SFTP is an in-process SSH server on loopback that offers only the sftp
// subsystem (pkg/sftp's server over the real file system).
type SFTP struct {
	// Addr is host:port; it stays the same across Stop and Start.
	Addr string
	// Root is a directory clients may use; paths are absolute.
	Root string
	// User and Password log in by password; ClientKeyFile (unencrypted)
	// holds a key that is authorised too.
	User, Password, ClientKeyFile string
	// HostKey is the server's key; KnownHosts a known_hosts file naming it.
	HostKey    ssh.PublicKey
	KnownHosts string

	config *ssh.ServerConfig
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
	keys   []ssh.PublicKey
}

// NewSFTP starts an in-process SFTP server; it stops when the test ends.
func NewSFTP(t testing.TB) *SFTP {
	t.Helper()
	dir := t.TempDir()
	s := &SFTP{Root: t.TempDir(), User: "usage", Password: "pw-" + randHex(8), conns: map[net.Conn]bool{}}
	_, hostSigner := NewKey(t, dir, "")
	s.HostKey = hostSigner.PublicKey()
	keyFile, client := NewKey(t, dir, "")
	s.ClientKeyFile = keyFile
	s.Authorize(client.PublicKey())
	s.config = &ssh.ServerConfig{
		PasswordCallback: func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if c.User() == s.User && string(pw) == s.Password {
				return nil, nil
			}
			return nil, errors.New("wrong password")
		},
		PublicKeyCallback: s.checkKey,
	}
	s.config.AddHostKey(hostSigner)
	s.Addr = "127.0.0.1:0"
	s.Start(t)
	s.KnownHosts = filepath.Join(dir, "known_hosts")
	line := KnownHostsLine(s.Addr, s.HostKey)
	if err := os.WriteFile(s.KnownHosts, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// KnownHostsLine is the known_hosts line for a server at addr.
func KnownHostsLine(addr string, key ssh.PublicKey) string {
	host, port, _ := net.SplitHostPort(addr)
	if port != "22" {
		host = "[" + host + "]:" + port
	}
	return host + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
}

// Authorize lets key log in as User.
func (s *SFTP) Authorize(key ssh.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, key)
}

func (s *SFTP) checkKey(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.keys {
		if c.User() == s.User && string(k.Marshal()) == string(key.Marshal()) {
			return nil, nil
		}
	}
	return nil, errors.New("key not authorised")
}

// Start listens on Addr again after Stop.
func (s *SFTP) Start(t testing.TB) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port may linger for a moment after Stop
		if ln, err = net.Listen("tcp", s.Addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("sftp server: listen %s: %v", s.Addr, err)
	}
	s.mu.Lock()
	s.ln, s.Addr = ln, ln.Addr().String()
	s.mu.Unlock()
	go s.accept(ln)
}

// Stop closes the listener and cuts every connection, as a crashed
// server would.
func (s *SFTP) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	for c := range s.conns {
		c.Close()
	}
	clear(s.conns)
}

func (s *SFTP) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		go s.serve(c)
	}
}

func (s *SFTP) serve(c net.Conn) {
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	_, chans, reqs, err := ssh.NewServerConn(c, s.config)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		go serveSession(ch, creqs)
	}
}

// serveSession answers the "subsystem sftp" request and serves it.
func serveSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		ok := req.Type == "subsystem" && len(req.Payload) > 4 && string(req.Payload[4:]) == "sftp"
		req.Reply(ok, nil)
		if !ok {
			continue
		}
		go ssh.DiscardRequests(reqs)
		srv, err := sftp.NewServer(ch)
		if err != nil {
			return
		}
		if err := srv.Serve(); err != nil && !errors.Is(err, io.EOF) {
			srv.Close()
		}
		return
	}
}

// Sshd is the real OpenSSH server run as a child process with its own
// configuration, host key and user, serving only internal-sftp.
type Sshd struct {
	// Addr is the loopback address sshd listens on.
	Addr string
	// User is a local account (password field "*") that may log in with
	// ClientKeyFile; UID and GID own Root, the directory it writes to.
	User          string
	UID, GID      int
	Root          string
	ClientKeyFile string
	// HostKey is sshd's key; KnownHosts was written by ssh-keyscan.
	HostKey    ssh.PublicKey
	KnownHosts string

	bin, config, log string
	cmd              *exec.Cmd
}

// sshdUser is the account the tests log in as.
const sshdUser = "usagedrop-sftp"

// NewSshd starts the real sshd. It needs root (to switch to the test
// user) and the openssh-server package; without them the test skips, or
// fails under CI.
func NewSshd(t testing.TB) *Sshd {
	t.Helper()
	bin := findBinary(t, "sshd", "/usr/sbin/sshd")
	if os.Geteuid() != 0 {
		Unavailable(t, "sshd tests need root to run sshd as another user")
	}
	u := ensureUser(t)
	// Not t.TempDir: its parent is private to root, and sshd reads
	// authorized_keys and serves Root as the test user.
	conf, root := sharedTempDir(t, "usagedrop-sshd-conf-"), sharedTempDir(t, "usagedrop-sshd-")
	s := &Sshd{Addr: freeAddr(t), User: u.Username, Root: root, bin: bin,
		config: filepath.Join(conf, "sshd_config"), log: filepath.Join(conf, "sshd.log")}
	s.UID, _ = strconv.Atoi(u.Uid)
	s.GID, _ = strconv.Atoi(u.Gid)
	if err := os.Chown(root, s.UID, s.GID); err != nil {
		t.Fatal(err)
	}
	s.writeConfig(t, conf)
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	s.Start(t)
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("sshd log:\n%s", s.Log())
		}
	})
	s.keyscan(t, conf)
	return s
}

// sharedTempDir makes a directory other users may enter, removed at the
// end of the test.
func sharedTempDir(t testing.TB, pattern string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// ensureUser creates the test account if it is missing.
func ensureUser(t testing.TB) *user.User {
	t.Helper()
	if u, err := user.Lookup(sshdUser); err == nil {
		return u
	}
	out, err := exec.Command("useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
		"--shell", "/bin/sh", "--password", "*", sshdUser).CombinedOutput()
	if err != nil {
		Unavailable(t, "useradd %s: %v: %s", sshdUser, err, out)
	}
	u, err := user.Lookup(sshdUser)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (s *Sshd) writeConfig(t testing.TB, conf string) {
	t.Helper()
	hostKey, _ := NewKey(t, conf, "")
	keyFile, client := NewKey(t, conf, "")
	s.ClientKeyFile = keyFile
	authorized := filepath.Join(conf, "authorized_keys")
	if err := os.WriteFile(authorized, ssh.MarshalAuthorizedKey(client.PublicKey()), 0o644); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(s.Addr)
	config := fmt.Sprintf(`Port %s
ListenAddress 127.0.0.1
HostKey %s
PidFile none
AuthorizedKeysFile %s
StrictModes no
UsePAM no
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AllowUsers %s
Subsystem sftp internal-sftp
ForceCommand internal-sftp
LogLevel VERBOSE
MaxStartups 100
`, port, hostKey, authorized, s.User)
	if err := os.WriteFile(s.config, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Start runs sshd; after Stop it comes back on the same address.
func (s *Sshd) Start(t testing.TB) {
	t.Helper()
	s.cmd = exec.Command(s.bin, "-f", s.config, "-D", "-E", s.log)
	s.cmd.Env = minimalEnv()
	// Its own process group, so Stop kills the per-connection children
	// too, as a crash or reboot of the server would.
	ownProcessGroup(s.cmd)
	if out, err := exec.Command(s.bin, "-t", "-f", s.config).CombinedOutput(); err != nil {
		t.Fatalf("sshd -t: %v: %s", err, out)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	waitListening(t, s.Addr, s.log)
}

// Stop kills sshd and every session it serves, as a crash of the server
// machine would. Session processes call setsid, so they are found by
// parentage rather than process group.
func (s *Sshd) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	pids := append(descendants(s.cmd.Process.Pid), s.cmd.Process.Pid)
	for _, pid := range pids {
		kill(pid)
	}
	s.cmd.Wait()
	s.cmd = nil
}

// descendants lists the processes below pid, from /proc.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ...": comm may hold spaces and parens.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) > 1 {
			ppid, _ := strconv.Atoi(fields[1])
			children[ppid] = append(children[ppid], child)
		}
	}
	var out []int
	for queue := children[pid]; len(queue) > 0; queue = queue[1:] {
		out = append(out, queue[0])
		queue = append(queue, children[queue[0]]...)
	}
	return out
}

// Log returns what sshd logged so far, for failure messages.
func (s *Sshd) Log() string {
	b, _ := os.ReadFile(s.log)
	return string(b)
}

// keyscan writes KnownHosts with ssh-keyscan, as an operator would.
func (s *Sshd) keyscan(t testing.TB, conf string) {
	t.Helper()
	host, port, _ := net.SplitHostPort(s.Addr)
	out, err := exec.Command("ssh-keyscan", "-t", "ed25519", "-p", port, host).Output()
	if err != nil || len(out) == 0 {
		t.Fatalf("ssh-keyscan %s: %v", s.Addr, err)
	}
	s.KnownHosts = filepath.Join(conf, "known_hosts")
	if err := os.WriteFile(s.KnownHosts, out, 0o644); err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(out))
	if len(fields) < 3 {
		t.Fatalf("ssh-keyscan: odd output %q", out)
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(fields[1] + " " + fields[2]))
	if err != nil {
		t.Fatalf("ssh-keyscan: %v", err)
	}
	s.HostKey = key
}
