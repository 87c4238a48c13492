package pipeline

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"usagedrop/ledger"
)

// inUserNS is set in a test run again inside a user namespace.
const inUserNS = "USAGEDROP_IN_USERNS"

// The spool's disk fills up: a drop too large for it waits, says it waits
// for space, and other drops go on; once there is space it imports. The
// spool is a real tmpfs of 512 KiB: as root the test mounts it; otherwise
// it runs itself again in a user and mount namespace of its own, where it
// may, and skips only where the system allows neither.
func TestSpoolFullIsWaitedOut(t *testing.T) {
	if os.Getenv(inUserNS) == "" && (os.Getuid() != 0 || os.Getenv("USAGEDROP_TEST_USERNS") != "") {
		rerunInUserNS(t)
		return
	}
	e := start(t)
	e.stop()
	spool := filepath.Join(e.dir, "spool")
	os.RemoveAll(spool)
	os.MkdirAll(spool, 0o750)
	if err := syscall.Mount("tmpfs", spool, "tmpfs", 0, "size=512k"); err != nil {
		t.Fatalf("mount a tmpfs for the spool: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(spool, syscall.MNT_DETACH) })
	e.run()
	defer e.stop()

	var big strings.Builder
	big.WriteString("ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,DESCRIPTION\r\n")
	for j := range 20000 {
		fmt.Fprintf(&big, "A%08d,API Calls,%d.25,03/%02d/2026,,A-S%08d,,usage row %d\r\n", j%500, j%97, 13+j%15, j%300, j)
	}
	e.dropBytes("big.csv", []byte(big.String()))
	saw := waitLastError(t, e, "big.csv", "waiting for space in the spool since ")
	if !strings.Contains(saw, "no space left on device") {
		t.Errorf("the reason does not say the disk is full: %q", saw)
	}

	e.drop("partner-template.csv", "small.csv")
	deadline := time.Now().Add(30 * time.Second)
	for {
		x := finishedByName(e, "small.csv")
		if x != nil {
			if x.State != ledger.Done {
				t.Fatalf("small.csv: %s %s", x.State, x.LastError)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("small.csv did not import while the spool was full for big.csv")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if x, _ := entryByName(e, "big.csv"); x.State != ledger.Claimed || x.Failures != 0 {
		t.Fatalf("big.csv while the spool is full: %s with %d failures counted against it", x.State, x.Failures)
	}

	if err := syscall.Mount("tmpfs", spool, "tmpfs", syscall.MS_REMOUNT, "size=16m"); err != nil {
		t.Fatal(err)
	}
	x := e.waitFinished(2)["big.csv"]
	if x.State != ledger.Done || x.Records != 20000 {
		t.Fatalf("big.csv once there is space: %s, %d records (%s)", x.State, x.Records, x.LastError)
	}
	if n := len(e.sim.Records()); n != 21000 {
		t.Fatalf("zuora holds %d records, want 21000", n)
	}
}

// rerunInUserNS runs t again in a child process that is root in a user and
// mount namespace of its own, where it may mount a tmpfs without being
// root on the machine.
func rerunInUserNS(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), inUserNS+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil {
		t.Skipf("cannot test a full disk here: not root, and no user namespace (%v)", err)
	}
	if err != nil {
		t.Fatalf("in a user namespace: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("in a user namespace, the test did not pass:\n%s", out)
	}
	t.Logf("passed in a user namespace of its own")
}
