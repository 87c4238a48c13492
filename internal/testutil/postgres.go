package testutil

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresDB is an empty database of its own on the test binary's
// PostgreSQL server.
type PostgresDB struct {
	// DSN connects to the database, password included.
	DSN string
	// DSNNoPassword is DSN without the password, for tests of where the
	// password comes from.
	DSNNoPassword string
	// Password is the server's password for User.
	Password string
	// Name is the database's name.
	Name string
}

// postgresServer is one PostgreSQL server for every test of a test binary:
// initdb and a start cost seconds, a database a few milliseconds.
type postgresServer struct {
	addr, user, password, dir string
	// stop is the wrapper's stdin: closed, at the latest when the test
	// binary exits, it stops the server and removes its directory.
	stop io.WriteCloser
}

var pgShared struct {
	once        sync.Once
	srv         *postgresServer
	err         error
	unavailable string
}

// Postgres returns a new empty database on a real PostgreSQL server
// (Debian's postgresql package) that the first call starts in a temporary
// directory, listening on loopback with a password, with fsync off. The
// database is dropped when t ends; the server stops when the test binary
// exits. Without PostgreSQL the test skips, or fails under CI.
func Postgres(t testing.TB) PostgresDB {
	t.Helper()
	pgShared.once.Do(func() { pgShared.srv, pgShared.unavailable, pgShared.err = startPostgres() })
	if pgShared.unavailable != "" {
		Unavailable(t, "%s", pgShared.unavailable)
	}
	if pgShared.err != nil {
		t.Fatalf("start PostgreSQL: %v", pgShared.err)
	}
	s := pgShared.srv
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, s.dsn("postgres", true))
	if err != nil {
		t.Fatalf("connect to the test PostgreSQL: %v", err)
	}
	defer admin.Close(ctx)
	name := "t_" + strings.ToLower(randHex(6))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, s.dsn("postgres", true))
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return PostgresDB{DSN: s.dsn(name, true), DSNNoPassword: s.dsn(name, false), Password: s.password, Name: name}
}

func (s *postgresServer) dsn(db string, withPassword bool) string {
	u := url.URL{Scheme: "postgres", Host: s.addr, Path: "/" + db, RawQuery: "sslmode=disable"}
	if withPassword {
		u.User = url.UserPassword(s.user, s.password)
	} else {
		u.User = url.User(s.user)
	}
	return u.String()
}

// postgresBin returns the directory of the newest installed PostgreSQL's
// programs, or "".
func postgresBin() string {
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	slices.SortFunc(found, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(a))))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(b))))
		return vb - va
	})
	if len(found) > 0 {
		return filepath.Dir(found[0])
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

// startPostgres runs initdb and starts the server. It returns a reason to
// skip when PostgreSQL is not installed or cannot run here.
func startPostgres() (s *postgresServer, unavailable string, err error) {
	bin := postgresBin()
	if bin == "" {
		return nil, "PostgreSQL not found (run scripts/ci-deps.sh)", nil
	}
	// initdb and postgres refuse to run as root: run them as an account
	// of their own, which then owns the directory.
	var asUser []string
	var owner *user.User
	if os.Geteuid() == 0 {
		for _, name := range []string{"postgres", "nobody"} {
			if u, err := user.Lookup(name); err == nil {
				owner = u
				asUser = []string{"runuser", "-u", name, "--"}
				break
			}
		}
		if owner == nil {
			return nil, "PostgreSQL cannot run as root and there is no postgres or nobody account", nil
		}
	}
	dir, err := os.MkdirTemp("", "usagedrop-pg-")
	if err != nil {
		return nil, "", err
	}
	if owner != nil {
		uid, _ := strconv.Atoi(owner.Uid)
		gid, _ := strconv.Atoi(owner.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, "", err
		}
	}
	s = &postgresServer{user: "usagedrop", password: "pw-" + randHex(8), dir: dir}
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.password+"\n"), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	if owner != nil {
		uid, _ := strconv.Atoi(owner.Uid)
		os.Chown(pwfile, uid, -1)
	}
	initdb := append(asUser, filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"), "-U", s.user,
		"--pwfile", pwfile, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync")
	if out, err := exec.Command(initdb[0], initdb[1:]...).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, "", fmt.Errorf("initdb: %v: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// The wrapper runs the server until its stdin closes, which happens
	// when the test binary exits however it does; then it stops the
	// server and removes the directory.
	script := `"$1/postgres" -D "$2/data" -k "$2" -p "$3" -c listen_addresses=127.0.0.1 \
		-c fsync=off -c synchronous_commit=off -c full_page_writes=off \
		-c max_connections=300 -c shared_buffers=32MB 2>"$2/postgres.log" &
pid=$!
cat >/dev/null
kill -INT $pid
wait $pid
rm -rf "$2"`
	args := append(asUser, "sh", "-c", script, "sh", bin, dir, strconv.Itoa(port))
	cmd := exec.Command(args[0], args[1:]...)
	if s.stop, err = cmd.StdinPipe(); err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	go cmd.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, s.dsn("postgres", true))
		if err == nil {
			c.Close(ctx)
			cancel()
			return s, "", nil
		}
		cancel()
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
			s.stop.Close()
			return nil, "", errors.Join(err, fmt.Errorf("postgres log:\n%s", log))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freePort returns a loopback TCP port nobody listens on right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
