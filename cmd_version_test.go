package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionOf(t *testing.T) {
	const rev = "fa638c2abcdef0123456789abcdef0123456789a"
	stamped := func(main string, settings ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "usagedrop", Version: main}}
		for i := 0; i+1 < len(settings); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return bi
	}
	for _, tc := range []struct {
		name     string
		bi       *debug.BuildInfo
		override string
		want     string
	}{
		{"no build info", nil, "", "dev"},
		{"no build info, -X", nil, "1.2.3", "1.2.3"},
		{"go run, no vcs", stamped("(devel)"), "", "dev (go1.26.8)"},
		{"from git", stamped("v0.0.0-20261201195330-fa638c2abcde", "vcs.revision", rev, "vcs.modified", "false"), "",
			"v0.0.0-20261201195330-fa638c2abcde (fa638c2abcde, go1.26.8)"},
		{"from a modified tree", stamped("v0.0.0-20261201195330-fa638c2abcde+dirty", "vcs.revision", rev, "vcs.modified", "true"), "",
			"v0.0.0-20261201195330-fa638c2abcde+dirty (fa638c2abcde modified, go1.26.8)"},
		{"tagged", stamped("v1.4.0", "vcs.revision", rev), "", "v1.4.0 (fa638c2abcde, go1.26.8)"},
		{"-X wins over git", stamped("v1.4.0", "vcs.revision", rev), "1.4.0-1", "1.4.0-1 (fa638c2abcde, go1.26.8)"},
		{"revision without a module version", stamped("(devel)", "vcs.revision", rev), "", "dev (fa638c2abcde, go1.26.8)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := versionOf(tc.bi, tc.override).String(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestVersionFromGit builds usagedrop from a git checkout of this tree, as
// scripts/package.sh does, and checks that `usagedrop version` names the
// commit, and says so when the tree was modified.
func TestVersionFromGit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds usagedrop twice")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	// A fresh repository holding this tree as it is now, uncommitted
	// changes included: go stamps nothing in a git worktree (its .git is a
	// file), and the commit under test must be the code under test.
	src := runIn(t, ".", "git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	dir := t.TempDir()
	for _, name := range strings.Split(strings.TrimRight(src, "\x00"), "\x00") {
		b, err := os.ReadFile(name)
		if os.IsNotExist(err) {
			continue // deleted in the work tree
		}
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git := func(args ...string) string {
		base := []string{"-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"}
		return strings.TrimSpace(runIn(t, dir, "git", append(base, args...)...))
	}
	git("init", "-q")
	git("add", "-A")
	git("commit", "-q", "-m", "version test")
	rev := git("rev-parse", "HEAD")

	build := func() string {
		bin := filepath.Join(t.TempDir(), "usagedrop")
		runIn(t, dir, "go", "build", "-buildvcs=true", "-trimpath", "-o", bin, ".")
		return strings.TrimSpace(runIn(t, dir, bin, "version"))
	}
	got := build()
	t.Logf("usagedrop version: %s", got)
	if want := "(" + rev[:12] + ", go"; !strings.Contains(got, want) {
		t.Errorf("clean checkout: version %q lacks %q", got, want)
	}
	if strings.Contains(got, " dev ") || strings.Contains(got, "modified") {
		t.Errorf("clean checkout: version %q", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := build(); !strings.Contains(got, rev[:12]+" modified") {
		t.Errorf("modified checkout: version %q lacks %q", got, rev[:12]+" modified")
	}
}

func runIn(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr)
	}
	return string(out)
}
