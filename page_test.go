package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"usagedrop/internal/testutil"
	"usagedrop/zuorasim"
)

// TestStatusPageInBrowser runs the daemon on real drops in every state a
// finance user meets (imported, rejected, failed at Zuora, waiting for
// Zuora) and a source stopped for an operator, then reads the status page
// in headless Chromium as a person would: what it shows, the filters, a
// drop's page, the errors.csv link, and the refusal without credentials.
// Screenshots go to $USAGEDROP_ARTEFACTS (default artefacts/).
func TestStatusPageInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a browser: not with -short")
	}
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		testutil.Unavailable(t, "chromium not found (run scripts/ci-deps.sh): %v", err)
	}
	artefacts := os.Getenv("USAGEDROP_ARTEFACTS")
	if artefacts == "" {
		artefacts = "artefacts"
	}
	if err := os.MkdirAll(artefacts, 0o755); err != nil {
		t.Fatal(err)
	}

	// Zuora: the simulator, which the test can make fail an import or
	// stop answering.
	sim := zuorasim.New(zuorasim.Options{ProcessingDelay: 30 * time.Millisecond})
	var down atomic.Bool
	zuora := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, `{"success":false,"reasons":[{"code":50000000,"message":"service unavailable"}]}`, http.StatusServiceUnavailable)
			return
		}
		sim.ServeHTTP(w, r)
	}))

	dir := t.TempDir()
	addr := freeAddr(t)
	token := "page-test-token-0123456789"
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	finance, partners := filepath.Join(dir, "finance"), filepath.Join(dir, "partners")
	cfg := writeConfig(t, dir, "page", zuora, "name: finance\n    type: local\n    path: "+finance+"\n")
	b, _ := os.ReadFile(cfg)
	b = bytes.Replace(b, []byte(`http: "off"`), []byte("http: "+addr+"\nhttp_auth:\n  token_file: "+filepath.Join(dir, "token")), 1)
	b = append(b, "  - name: partners\n    type: local\n    path: "+partners+"\n    interval: 200ms\n    settle: 100ms\n"...)
	if err := os.WriteFile(cfg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// A link where the daemon's processing/ folder should be stops the
	// partners source until an operator looks.
	for _, d := range []string{finance, partners, filepath.Join(dir, "elsewhere")} {
		os.MkdirAll(d, 0o755)
	}
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), filepath.Join(partners, "processing")); err != nil {
		t.Fatal(err)
	}

	var logs logBuffer
	cmd := spawn(t, cfg, &logs)
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	api := &pageAPI{t: t, base: "http://" + addr, token: token, logs: &logs}

	template, err := os.ReadFile(filepath.Join(testutil.Fixtures(t), "partner-template.csv"))
	if err != nil {
		t.Fatal(err)
	}
	drop := func(name, body string) {
		p := filepath.Join(finance, name)
		os.WriteFile(p+".part", []byte(body), 0o644)
		os.Rename(p+".part", p)
	}
	variant := func(i int) string {
		return strings.ReplaceAll(string(template), "Line one", fmt.Sprintf("Line one #%d", i))
	}
	drop("march-usage.csv", variant(1))
	api.wait("march-usage.csv", func(d pageDrop) bool { return d.State == "done" && d.Finished })
	bad, err := os.ReadFile(filepath.Join(testutil.Fixtures(t), "bad-rows.csv"))
	if err != nil {
		t.Fatal(err)
	}
	drop("april-usage.csv", string(bad))
	api.wait("april-usage.csv", func(d pageDrop) bool { return d.State == "rejected" && d.Finished })
	sim.SetFaults(zuorasim.Faults{FailImports: 1})
	drop("may-usage.csv", variant(2))
	api.wait("may-usage.csv", func(d pageDrop) bool { return d.State == "failed" && d.Finished })
	down.Store(true)
	drop("june-usage.csv", variant(3))
	api.wait("june-usage.csv", func(d pageDrop) bool { return d.WaitingFor == "Zuora" })

	ctx := browser(t, chromium)
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": "Bearer " + token}}); err != nil {
		t.Fatal(err)
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(artefacts, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}

	// The list: every drop in its state, in plain words.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(api.base+"/"), chromedp.WaitVisible(chromedp.CSS("table.drops"))); err != nil {
		t.Fatalf("open the page: %v\n%s", err, logs.String())
	}
	list := text("body")
	for _, want := range []string{
		"imported 1,000 rows (import ",
		"rejected: 4 problems",
		"failed at Zuora: ",
		"waiting for Zuora since ",
		"Source partners is stopped",
		"is a symbolic link, not a folder",
		"march-usage.csv", "april-usage.csv", "may-usage.csv", "june-usage.csv",
	} {
		if !strings.Contains(list, want) {
			t.Errorf("the page does not show %q:\n%s", want, list)
		}
	}
	// The style sheet applies: the page's policy lets in its own, by hash.
	if display, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("form.filters")).display`)); err != nil || display != "flex" {
		t.Errorf("the style sheet was not applied: the filters are displayed %q (%v)", display, err)
	}
	if i, j := strings.Index(list, "june-usage.csv"), strings.Index(list, "march-usage.csv"); i > j {
		t.Errorf("not newest first:\n%s", list)
	}
	shot("status-list.png")

	// The filter narrows the list to the rejected drop.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`select[name="state"]`), "rejected"),
		chromedp.Click(chromedp.CSS(`form.filters button`)),
		chromedp.WaitReady(chromedp.CSS(`option[value="rejected"][selected]`)),
	); err != nil {
		t.Fatal(err)
	}
	rows := text("table.drops tbody")
	if !strings.Contains(rows, "april-usage.csv") || strings.Contains(rows, "march-usage.csv") || strings.Contains(rows, "june-usage.csv") {
		t.Errorf("filtered to rejected, the list shows:\n%s", rows)
	}
	shot("status-filtered-rejected.png")

	// The drop's page: its whole history, and its reports.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`td.file a`)),
		chromedp.WaitVisible(chromedp.CSS(`ol.history`)),
	); err != nil {
		t.Fatal(err)
	}
	href, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`a.report[href$="errors.csv"]`), "href"))
	if err != nil {
		t.Fatal(err)
	}
	errorsHref, ok := href.Value, href.Exists
	page := text("main")
	for _, want := range []string{"april-usage.csv", "rejected: 4 problems", "discovered", "claimed", "fetched", "rejected", "moved to failed/april-usage.csv"} {
		if !strings.Contains(page, want) {
			t.Errorf("the drop's page does not show %q:\n%s", want, page)
		}
	}
	shot("status-drop-rejected.png")

	// The errors.csv link gives the very file beside the drop.
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	got := api.get(resolve(t, loc, errorsHref), true)
	want, err := os.ReadFile(filepath.Join(finance, "failed", "april-usage.csv.errors.csv"))
	if err != nil || !ok || got != string(want) || !strings.Contains(got, "UOM") {
		t.Errorf("errors.csv link %q gave %d bytes, the file has %d (%v)", errorsHref, len(got), len(want), err)
	}

	// The waiting drop's page, and the list at a phone's width.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(api.base+"/?state=waiting"),
		chromedp.Click(chromedp.CSS(`td.file a`)),
		chromedp.WaitVisible(chromedp.CSS(`ol.history`)),
	); err != nil {
		t.Fatal(err)
	}
	if page := text("main"); !strings.Contains(page, "waiting for Zuora since") || !strings.Contains(page, "Last error") {
		t.Errorf("the waiting drop's page:\n%s", page)
	}
	shot("status-drop-waiting.png")
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844), chromedp.Navigate(api.base+"/"), chromedp.WaitVisible(chromedp.CSS("table.drops"))); err != nil {
		t.Fatal(err)
	}
	width, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
	if err != nil || width > 390 {
		t.Errorf("at a phone's width the page is %dpx wide: it scrolls sideways (%v)", width, err)
	}
	shot("status-list-phone.png")

	// Without the token the page is refused, as the API is.
	bare := browser(t, chromium)
	if err := chromedp.Do(bare, chromedp.Navigate(api.base+"/"), chromedp.WaitReady(chromedp.CSS("body"))); err != nil {
		t.Fatal(err)
	}
	refused, _ := chromedp.Run(bare, chromedp.Text(chromedp.CSS("body")))
	if !strings.Contains(refused, "credentials needed") || strings.Contains(refused, "april-usage.csv") {
		t.Errorf("without the token the page shows:\n%s", refused)
	}
}

// browser starts headless Chromium on a fresh profile with the flags this
// machine's closed network needs, for the length of the test.
func browser(t *testing.T, chromium string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelC := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelC(); cancelB(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		testutil.Unavailable(t, "chromium does not start: %v", err)
	}
	return ctx
}

// resolve makes href, as found on the page at base, an absolute URL.
func resolve(t *testing.T, base, href string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := req.URL.Parse(href)
	if err != nil {
		t.Fatal(err)
	}
	return u.String()
}

// pageAPI reads the daemon's drops from its API while the test drives it.
type pageAPI struct {
	t     *testing.T
	base  string
	token string
	logs  *logBuffer
}

type pageDrop struct {
	Name       string `json:"name"`
	State      string `json:"state"`
	Finished   bool   `json:"finished"`
	WaitingFor string `json:"waiting_for"`
}

func (a *pageAPI) get(u string, auth bool) string {
	a.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if auth {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return string(b)
}

// wait waits until the drop named name is as done says.
func (a *pageAPI) wait(name string, done func(pageDrop) bool) {
	a.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last []pageDrop
	for time.Now().Before(deadline) {
		var page struct{ Drops []pageDrop }
		if err := json.Unmarshal([]byte(a.get(a.base+"/v1/drops?limit=1000", true)), &page); err == nil {
			last = page.Drops
			for _, d := range page.Drops {
				if d.Name == name && done(d) {
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.t.Fatalf("%s never got there; drops %+v\n%s", name, last, a.logs.String())
}
