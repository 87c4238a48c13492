package sftp

// The SSH connection under a Source: dialled on first use, verified
// against known_hosts or a pinned key, kept alive, dropped when lost and
// redialled with backoff.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"usagedrop/sources"
)

// conn is one SSH connection and the SFTP session on it.
type conn struct {
	ssh  *ssh.Client
	sftp *sftp.Client
	done chan struct{}
	once sync.Once
}

func (c *conn) close() {
	c.once.Do(func() {
		close(c.done)
		c.sftp.Close()
		c.ssh.Close()
	})
}

// client returns the connection, dialling if there is none and the
// backoff after the last failed dial has passed.
func (s *Source) client(ctx context.Context) (*conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, fmt.Errorf("sftp %s: source closed", s.Address)
	case s.conn != nil:
		return s.conn, nil
	case time.Now().Before(s.retryAt):
		return nil, fmt.Errorf("sftp %s: redial in %s: %w", s.Address,
			time.Until(s.retryAt).Round(time.Millisecond), s.lastErr)
	}
	c, err := s.dial(ctx)
	if err != nil && ctx.Err() != nil {
		return nil, err // the caller gave up; says nothing about the server
	}
	if err != nil {
		s.failures++
		s.retryAt = time.Now().Add(min(time.Second<<min(s.failures-1, 6), maxRedialBackoff))
		s.lastErr = err
		return nil, err
	}
	if s.failures > 0 {
		s.Logger.Info("reconnected", "source", s.name, "address", s.Address, "after_failures", s.failures)
	}
	s.failures, s.conn = 0, c
	go s.watch(c)
	return c, nil
}

// watch drops c as soon as its connection ends, and probes it while idle.
func (s *Source) watch(c *conn) {
	ended := make(chan struct{})
	go func() { c.ssh.Wait(); close(ended) }()
	tick := time.NewTicker(max(s.KeepAlive, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ended:
			s.drop(c, errors.New("connection closed"))
			return
		case <-c.done:
			return
		case <-tick.C:
			if err := s.probe(c); err != nil {
				s.drop(c, err)
				return
			}
		}
	}
}

// probe sends an OpenSSH keepalive and waits at most Timeout for the
// answer; any answer, even "unknown request", proves the peer alive.
func (s *Source) probe(c *conn) error {
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.ssh.SendRequest("keepalive@openssh.com", true, nil)
		errc <- err
	}()
	select {
	case err := <-errc:
		return err
	case <-time.After(s.timeout()):
		return fmt.Errorf("keepalive: no answer in %s", s.timeout())
	}
}

// drop forgets c if it is still the cached connection, and closes it.
func (s *Source) drop(c *conn, why error) {
	s.mu.Lock()
	if s.conn == c {
		s.conn = nil
		s.Logger.Warn("connection lost; will redial", "source", s.name, "address", s.Address, "err", why)
	}
	s.mu.Unlock()
	c.close()
}

// check drops c when err says the connection is gone, and returns err.
func (s *Source) check(c *conn, err error) error {
	if lostConnection(err) {
		s.drop(c, err)
	}
	return err
}

func lostConnection(err error) bool {
	var ne net.Error
	return errors.Is(err, sftp.ErrSSHFxConnectionLost) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.As(err, &ne)
}

func (s *Source) timeout() time.Duration {
	if s.Timeout <= 0 {
		return DefaultTimeout
	}
	return s.Timeout
}

// dial connects and logs in, giving up at Timeout or when ctx ends.
func (s *Source) dial(ctx context.Context) (*conn, error) {
	hostKey, algos, err := s.hostKeyCallback()
	if err != nil {
		return nil, err
	}
	auth, closeAgent, err := s.auth()
	if err != nil {
		return nil, err
	}
	defer closeAgent()
	d := net.Dialer{Timeout: s.timeout()}
	nc, err := d.DialContext(ctx, "tcp", s.Address)
	if err != nil {
		return nil, fmt.Errorf("sftp dial %s: %w", s.Address, err)
	}
	// The handshake and SFTP init run on nc; the deadline bounds them and
	// ctx cuts them short.
	nc.SetDeadline(time.Now().Add(s.timeout()))
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	cfg := &ssh.ClientConfig{User: s.User, Auth: auth, HostKeyCallback: hostKey,
		HostKeyAlgorithms: algos, Timeout: s.timeout()}
	sc, chans, reqs, err := ssh.NewClientConn(nc, s.Address, cfg)
	if err != nil {
		nc.Close()
		return nil, s.dialErr(ctx, err)
	}
	client := ssh.NewClient(sc, chans, reqs)
	sc2, err := sftp.NewClient(client)
	if err != nil {
		client.Close()
		return nil, s.dialErr(ctx, fmt.Errorf("start sftp subsystem: %w", err))
	}
	if !stop() {
		sc2.Close()
		client.Close()
		return nil, ctx.Err()
	}
	nc.SetDeadline(time.Time{})
	return &conn{ssh: client, sftp: sc2, done: make(chan struct{})}, nil
}

// dialErr names the cause of a failed login; refused credentials are
// fatal, since retrying them only locks the account.
func (s *Source) dialErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("sftp dial %s: %w", s.Address, ctx.Err())
	}
	if strings.Contains(err.Error(), "unable to authenticate") {
		return fmt.Errorf("sftp %s: server refused the credentials of user %q: %w: %w",
			s.Address, s.User, sources.ErrFatal, err)
	}
	return fmt.Errorf("sftp dial %s: %w", s.Address, err)
}

// auth collects the configured ways to log in. closeAgent ends the
// ssh-agent connection once the handshake is over.
func (s *Source) auth() (methods []ssh.AuthMethod, closeAgent func(), err error) {
	closeAgent = func() {}
	if s.KeyFile != "" {
		signer, err := s.readKey()
		if err != nil {
			return nil, nil, err
		}
		methods = append(methods, ssh.PublicKeys(signer))
	}
	if s.Agent != "" {
		if ac, err := net.Dial("unix", s.Agent); err == nil {
			closeAgent = func() { ac.Close() }
			methods = append(methods, ssh.PublicKeysCallback(agent.NewClient(ac).Signers))
		} else {
			s.Logger.Warn("ssh-agent unavailable", "source", s.name, "agent", s.Agent, "err", err)
		}
	}
	if s.Password != "" {
		methods = append(methods, ssh.Password(s.Password))
	}
	if len(methods) == 0 {
		closeAgent()
		return nil, nil, fmt.Errorf("sftp %s: no way to log in: set password, key_file or an ssh-agent: %w",
			s.Address, sources.ErrFatal)
	}
	return methods, closeAgent, nil
}

func (s *Source) readKey() (ssh.Signer, error) {
	pem, err := os.ReadFile(s.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("sftp %s: key_file: %w: %w", s.Address, sources.ErrFatal, err)
	}
	var signer ssh.Signer
	if s.KeyPassphrase != "" {
		signer, err = ssh.ParsePrivateKeyWithPassphrase(pem, []byte(s.KeyPassphrase))
	} else {
		signer, err = ssh.ParsePrivateKey(pem)
	}
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return nil, fmt.Errorf("sftp %s: key_file %s is encrypted; set key_passphrase: %w", s.Address, s.KeyFile, sources.ErrFatal)
	}
	if err != nil {
		return nil, fmt.Errorf("sftp %s: key_file %s: %w: %w", s.Address, s.KeyFile, sources.ErrFatal, err)
	}
	return signer, nil
}

// hostKeyCallback verifies the server against HostKey or KnownHosts, and
// returns the key algorithms to ask for so the server offers a key we know.
func (s *Source) hostKeyCallback() (ssh.HostKeyCallback, []string, error) {
	switch {
	case s.HostKey != "":
		pinned, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s.HostKey))
		if err != nil {
			return nil, nil, fmt.Errorf("sftp %s: host_key: %w: %w", s.Address, sources.ErrFatal, err)
		}
		return func(host string, _ net.Addr, key ssh.PublicKey) error {
			if bytes.Equal(key.Marshal(), pinned.Marshal()) {
				return nil
			}
			return fmt.Errorf("host key of %s is %s %s, not the pinned %s: %w",
				host, key.Type(), ssh.FingerprintSHA256(key), ssh.FingerprintSHA256(pinned), sources.ErrFatal)
		}, algorithms([]string{pinned.Type()}), nil
	case s.KnownHosts != "":
		check, err := knownhosts.New(s.KnownHosts)
		if err != nil {
			return nil, nil, fmt.Errorf("sftp %s: known_hosts: %w: %w", s.Address, sources.ErrFatal, err)
		}
		return func(host string, remote net.Addr, key ssh.PublicKey) error {
			return s.knownHostErr(host, key, check(host, remote, key))
		}, algorithms(knownTypes(s.KnownHosts, s.Address)), nil
	}
	return nil, nil, fmt.Errorf("sftp %s: known_hosts or host_key is required to verify the server: %w",
		s.Address, sources.ErrFatal)
}

// knownHostErr turns knownhosts' verdict into a message an operator can
// act on, with the fingerprint to compare out of band.
func (s *Source) knownHostErr(host string, key ssh.PublicKey, err error) error {
	var ke *knownhosts.KeyError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ke) && len(ke.Want) == 0:
		return fmt.Errorf("host %s is not in %s; it offered %s %s (check it with the server's admin, then add it): %w",
			host, s.KnownHosts, key.Type(), ssh.FingerprintSHA256(key), sources.ErrFatal)
	case errors.As(err, &ke):
		return fmt.Errorf("host key of %s does not match %s:%d; it offered %s %s: %w",
			host, ke.Want[0].Filename, ke.Want[0].Line, key.Type(), ssh.FingerprintSHA256(key), sources.ErrFatal)
	}
	return fmt.Errorf("host key of %s (%s): %w: %w", host, ssh.FingerprintSHA256(key), sources.ErrFatal, err)
}

// knownTypes lists the key types known_hosts holds for address in plain
// (unhashed) lines; for hashed files it returns nil and the client offers
// its defaults.
func knownTypes(file, address string) []string {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	want := knownhosts.Normalize(address)
	var types []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || strings.HasPrefix(fields[0], "#") || strings.HasPrefix(fields[0], "@") {
			continue
		}
		for _, h := range strings.Split(fields[0], ",") {
			if knownhosts.Normalize(h) == want {
				types = append(types, fields[1])
			}
		}
	}
	return types
}

// algorithms maps key types to host key algorithms: an RSA key is
// negotiated as rsa-sha2-*.
func algorithms(keyTypes []string) []string {
	var algos []string
	for _, t := range keyTypes {
		if t == ssh.KeyAlgoRSA {
			algos = append(algos, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256)
		}
		algos = append(algos, t)
	}
	return algos
}
