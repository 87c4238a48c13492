package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"usagedrop/internal/testutil"
	"usagedrop/zuorasim"
)

// sharedFolder is one drop folder two daemons watch, and a way to drop
// files into it out of band.
type sharedFolder struct {
	yaml string // the source entry of both configs, without instance-specific keys
	put  func(t *testing.T, name string, body []byte)
}

func localFolder(t *testing.T) sharedFolder {
	dir := filepath.Join(t.TempDir(), "shared")
	os.MkdirAll(dir, 0o755)
	return sharedFolder{
		yaml: fmt.Sprintf("    type: local\n    path: %s\n", dir),
		put: func(t *testing.T, name string, body []byte) {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p+".part", body, 0o644); err != nil {
				t.Fatal(err)
			}
			os.Rename(p+".part", p)
		},
	}
}

func s3Folder(t *testing.T) sharedFolder { return s3FolderOn(testutil.NewS3(t)) }

func versitygwFolder(t *testing.T) sharedFolder { return s3FolderOn(testutil.Versitygw(t)) }

func s3FolderOn(srv *testutil.S3) sharedFolder {
	c := srv.Client()
	return sharedFolder{
		yaml: fmt.Sprintf("    type: s3\n    bucket: %s\n    prefix: incoming/\n    region: %s\n    endpoint: %s\n    path_style: true\n    access_key_id: %s\n    secret_access_key: %s\n",
			srv.Bucket, srv.Region, srv.URL, srv.AccessKeyID, srv.SecretAccessKey),
		put: func(t *testing.T, name string, body []byte) {
			_, err := c.PutObject(context.Background(), &s3.PutObjectInput{
				Bucket: aws.String(srv.Bucket), Key: aws.String("incoming/" + name), Body: bytes.NewReader(body),
			})
			if err != nil {
				t.Fatal(err)
			}
		},
	}
}

func sftpFolder(t *testing.T) sharedFolder {
	srv := testutil.NewSFTP(t)
	return sftpFolderOn(t, srv.Root, -1, -1, fmt.Sprintf("    address: %s\n    user: %s\n    password: %s\n    known_hosts: %s\n",
		srv.Addr, srv.User, srv.Password, srv.KnownHosts))
}

// sshdFolder is a folder served by the real OpenSSH sshd, as a user of its
// own, with key authentication.
func sshdFolder(t *testing.T) sharedFolder {
	srv := testutil.NewSshd(t)
	return sftpFolderOn(t, srv.Root, srv.UID, srv.GID, fmt.Sprintf("    address: %s\n    user: %s\n    key_file: %s\n    known_hosts: %s\n",
		srv.Addr, srv.User, srv.ClientKeyFile, srv.KnownHosts))
}

func sftpFolderOn(t *testing.T, root string, uid, gid int, login string) sharedFolder {
	dir := filepath.Join(root, "outgoing")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	return sharedFolder{
		yaml: "    type: sftp\n" + login + fmt.Sprintf("    path: %s\n", dir),
		put: func(t *testing.T, name string, body []byte) {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p+".filepart", body, 0o644); err != nil {
				t.Fatal(err)
			}
			os.Chown(p+".filepart", uid, gid)
			os.Rename(p+".filepart", p)
		},
	}
}

// Two daemons with separate ledgers watch one folder; 200 files are
// dropped; one daemon is killed mid-way. Every record reaches Zuora exactly
// once: claims keep the daemons apart, the survivor takes over the dead
// one's claims when their lease runs out, and content-derived idempotency
// keys stop a file the dead one had already sent from being imported again.
func TestTwoDaemonsOneFolder(t *testing.T) {
	if testing.Short() {
		t.Skip("drops 200 files per backend")
	}
	for name, mk := range map[string]func(*testing.T) sharedFolder{
		"local": localFolder, "s3": s3Folder, "s3-versitygw": versitygwFolder, "sftp": sftpFolder, "sftp-sshd": sshdFolder,
	} {
		t.Run(name, func(t *testing.T) { twoDaemons(t, mk(t)) })
	}
}

func twoDaemons(t *testing.T, f sharedFolder) {
	sim := zuorasim.New(zuorasim.Options{ProcessingDelay: 20 * time.Millisecond})
	srv := httptestServer(t, sim)
	const files, rows = 200, 3
	start := func(instance string) (*exec.Cmd, *logBuffer) {
		var logs logBuffer
		cfg := writeConfig(t, t.TempDir(), instance, srv, "name: shared\n    lease: 3s\n"+f.yaml)
		return spawn(t, cfg, &logs), &logs
	}
	a, alogs := start("vm-a")
	b, blogs := start("vm-b")
	defer func() {
		b.Process.Signal(syscall.SIGTERM)
		b.Wait()
	}()
	for i := range files {
		f.put(t, fmt.Sprintf("usage %03d é.csv", i), templateRows(i, rows))
	}
	// Kill one daemon once the work is under way.
	deadline := time.Now().Add(60 * time.Second)
	for len(sim.Records()) < files*rows/4 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	a.Process.Kill()
	a.Wait()

	deadline = time.Now().Add(90 * time.Second)
	for len(sim.Records()) < files*rows && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // anything doubled would land now
	missing, doubled := onceEach(sim, files, rows)
	if len(missing)+len(doubled) > 0 {
		t.Fatalf("%d records missing (%.5v), %d doubled (%.5v)\n--- vm-a:\n%s\n--- vm-b:\n%s",
			len(missing), missing, len(doubled), doubled, tail(alogs.String(), 3000), tail(blogs.String(), 3000))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// An SFTP server whose host key is not the one known stops that source
// with a message naming the host and the key it saw; the daemon goes on
// with its other sources and says so on /healthz.
func TestWrongHostKeyStopsOnlyThatSource(t *testing.T) {
	srv := testutil.NewSFTP(t)
	other := testutil.NewSFTP(t) // its known_hosts names another key
	wrong := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(wrong, []byte(testutil.KnownHostsLine(srv.Addr, other.HostKey)+"\n"), 0o600)
	d := newDaemon(t)
	addr := freeAddr(t)
	cfg, _ := os.ReadFile(d.cfg)
	cfg = bytes.Replace(cfg, []byte(`http: "off"`), []byte("http: "+addr), 1)
	cfg = append(cfg, fmt.Sprintf("  - name: partner\n    type: sftp\n    address: %s\n    user: %s\n    password: %s\n    known_hosts: %s\n    path: %s\n",
		srv.Addr, srv.User, srv.Password, wrong, srv.Root)...)
	os.WriteFile(d.cfg, cfg, 0o600)
	cmd := d.start()
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	d.drop(1)
	if !d.waitImported(1, 20*time.Second) {
		t.Fatalf("the local source stopped too:\n%s", d.logs.String())
	}
	body, code := httpGet(t, "http://"+addr+"/healthz")
	if code != 503 || !strings.Contains(body, "source partner stopped") || !strings.Contains(body, "SHA256:") {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	if !strings.Contains(d.logs.String(), srv.Addr) {
		t.Fatalf("the log does not name the host %s:\n%s", srv.Addr, d.logs.String())
	}
}

// remoteDaemon runs one daemon on a remote folder with a fresh simulator.
func remoteDaemon(t *testing.T, f sharedFolder, settle string) (*zuorasim.Sim, *logBuffer) {
	sim := zuorasim.New(zuorasim.Options{ProcessingDelay: 20 * time.Millisecond})
	var logs logBuffer
	cfg := writeConfig(t, t.TempDir(), "vm", httptestServer(t, sim), "name: remote\n    settle: "+settle+"\n"+f.yaml)
	cmd := spawn(t, cfg, &logs)
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	return sim, &logs
}

func templateRows(file, rows int) []byte {
	var b strings.Builder
	b.WriteString("ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,DESCRIPTION\r\n")
	for j := range rows {
		fmt.Fprintf(&b, "A%08d,API Calls,%d,03/%02d/2026,,,,file %d row %d\r\n", file, j+1, 13+j%15, file, j)
	}
	return []byte(b.String())
}

func waitRecords(sim *zuorasim.Sim, n int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for len(sim.Records()) < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // anything doubled would land now
}

// A partner's SFTP upload that takes 10 s is not taken early: the daemon
// imports it once, whole.
func TestSlowSFTPUploadTakenWhole(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads for 10 s")
	}
	srv := testutil.NewSFTP(t)
	dir := filepath.Join(srv.Root, "in")
	os.MkdirAll(dir, 0o755)
	sim, logs := remoteDaemon(t, sharedFolder{yaml: fmt.Sprintf(
		"    type: sftp\n    address: %s\n    user: %s\n    password: %s\n    known_hosts: %s\n    path: %s\n",
		srv.Addr, srv.User, srv.Password, srv.KnownHosts, dir)}, "2s")

	hk, err := knownhosts.New(srv.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := ssh.Dial("tcp", srv.Addr, &ssh.ClientConfig{User: srv.User, Auth: []ssh.AuthMethod{ssh.Password(srv.Password)}, HostKeyCallback: hk})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client, err := sftp.NewClient(conn)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	w, err := client.Create(dir + "/partner upload.csv")
	if err != nil {
		t.Fatal(err)
	}
	body := templateRows(1, 2000)
	const chunks = 20 // one every 500 ms: 10 s in all
	step := len(body)/chunks + 1
	for i := 0; i < len(body); i += step {
		if _, err := w.Write(body[i:min(i+step, len(body))]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		if n := len(sim.Imports()); n > 0 {
			t.Fatalf("an import started while the upload was at %d of %d bytes:\n%s", i+step, len(body), logs.String())
		}
	}
	w.Close()
	waitRecords(sim, 2000, 20*time.Second)
	if n := len(sim.Records()); n != 2000 {
		t.Fatalf("zuora holds %d records, want 2000 once:\n%s", n, logs.String())
	}
}

// S3 answering 500 and SlowDown for a while loses and doubles nothing.
func TestS3FaultsLoseNothing(t *testing.T) {
	srv := testutil.NewS3(t)
	c := srv.Client()
	f := sharedFolder{yaml: fmt.Sprintf("    type: s3\n    bucket: %s\n    prefix: in/\n    region: %s\n    endpoint: %s\n    path_style: true\n    access_key_id: %s\n    secret_access_key: %s\n",
		srv.Bucket, srv.Region, srv.URL, srv.AccessKeyID, srv.SecretAccessKey)}
	const files, rows = 20, 50
	for i := range files {
		_, err := c.PutObject(context.Background(), &s3.PutObjectInput{
			Bucket: aws.String(srv.Bucket), Key: aws.String(fmt.Sprintf("in/usage-%02d.csv", i)), Body: bytes.NewReader(templateRows(i, rows)),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	srv.Fail(t, 5, 500, "InternalError")
	sim, logs := remoteDaemon(t, f, "100ms")
	for deadline := time.Now().Add(30 * time.Second); srv.Failed() < 5 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	srv.Fail(t, 5, 503, "SlowDown")
	waitRecords(sim, files*rows, 90*time.Second)
	seen := map[string]int{}
	for _, r := range sim.Records() {
		seen[r.Description]++
	}
	for i := range files {
		for j := range rows {
			if n := seen[fmt.Sprintf("file %d row %d", i, j)]; n != 1 {
				t.Fatalf("file %d row %d imported %d times (failures injected: %d)\n%s", i, j, n, srv.Failed(), tail(logs.String(), 4000))
			}
		}
	}
	if srv.Failed() < 10 {
		t.Fatalf("only %d failures were injected; the test did not test much", srv.Failed())
	}
}

// onceEach compares the records sim holds with the ones the multi-daemon
// tests drop (files files of rows rows, described "file I row J"): the
// descriptions missing and those imported more than once.
func onceEach(sim *zuorasim.Sim, files, rows int) (missing, doubled []string) {
	seen := map[string]int{}
	for _, r := range sim.Records() {
		seen[r.Description]++
	}
	for i := range files {
		for j := range rows {
			d := fmt.Sprintf("file %d row %d", i, j)
			switch seen[d] {
			case 1:
			case 0:
				missing = append(missing, d)
			default:
				doubled = append(doubled, d)
			}
		}
	}
	return missing, doubled
}
