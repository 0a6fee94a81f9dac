package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// caseTimeout bounds every case: the page's promises have no timeouts of
// their own, so a hang fails here, with the console printed.
const caseTimeout = 30 * time.Second

// The Chromium every case shares (each in a fresh browser context) starts
// with the first case that needs it, so that a run with no case to run
// (the benchmark pass, -run filters) starts none; TestMain stops it.
var (
	browserOnce sync.Once
	browser     context.Context
	stopBrowser func()
	browserErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if stopBrowser != nil {
		stopBrowser()
	}
	os.Exit(code)
}

// chromiumPath finds the browser: COMET_CHROMIUM, else the Debian
// package's chromium on PATH.
func chromiumPath() (string, error) {
	if p := os.Getenv("COMET_CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium on PATH: install the Debian package chromium (scripts/test.sh does) or set COMET_CHROMIUM")
}

// launch starts a headless Chromium with a fresh profile and returns its
// chromedp context and the function that stops it (through the allocator,
// which owns the process). ignoreCerts adds --ignore-certificate-errors,
// for the HTTPS case's self-signed certificate only.
func launch(ignoreCerts bool) (context.Context, func(), error) {
	path, err := chromiumPath()
	if err != nil {
		return nil, nil, err
	}
	profile, err := os.MkdirTemp("", "comet-e2e-profile-")
	if err != nil {
		return nil, nil, err
	}
	// Exactly the flags of the issue, not chromedp's default set: these
	// keep Chromium on loopback and quiet (no first-run, no background
	// requests, no component updates, no sync; every host name but
	// localhost resolves to nothing).
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1"),
	}
	if ignoreCerts {
		opts = append(opts, chromedp.Flag("ignore-certificate-errors", true))
	}
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	stop := func() {
		cancel()
		allocCancel()
		os.RemoveAll(profile)
	}
	// The first Run starts the browser; it must have no timeout of its
	// own (that would end the browser with it), so bound it from outside.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err = <-started:
	case <-time.After(caseTimeout):
		err = errors.New("chromium did not start within " + caseTimeout.String())
	}
	if err != nil {
		stop()
		return nil, nil, fmt.Errorf("starting %s: %w", path, err)
	}
	return ctx, stop, nil
}

// needBrowser returns the shared browser, starting it first if need be.
// Without one it fails the test under CI (CI=true), where a missing
// browser is a broken setup, and skips it elsewhere.
func needBrowser(t *testing.T) context.Context {
	t.Helper()
	browserOnce.Do(func() { browser, stopBrowser, browserErr = launch(false) })
	if browserErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but no browser: %v", browserErr)
		}
		t.Skipf("no browser: %v", browserErr)
	}
	return browser
}

// tab is one page in a browser context of its own.
type tab struct {
	t   *testing.T
	ctx context.Context // bounded by caseTimeout
	con *transcript
}

// newTab opens a tab in a fresh browser context of parent's browser (no
// cookies, storage or cache shared with other cases), bounded by
// caseTimeout. The console and uncaught exceptions of the page are printed
// if the test fails.
func newTab(t *testing.T, parent context.Context) *tab {
	t.Helper()
	return newTabWithin(t, parent, caseTimeout)
}

// newTabWithin is newTab bounded by limit instead, for the cases that wait
// on purpose.
func newTabWithin(t *testing.T, parent context.Context, limit time.Duration) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(parent, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	con := watch(t, ctx, "browser")
	ctx, cancelTimeout := context.WithTimeout(ctx, limit)
	t.Cleanup(cancelTimeout)
	return &tab{t: t, ctx: ctx, con: con}
}

// watch records the console, uncaught exceptions and log entries of the
// page of ctx in a transcript, printed if the test fails.
func watch(t *testing.T, ctx context.Context, what string) *transcript {
	t.Helper()
	con := newTranscript(t, what)
	if err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var b strings.Builder
			for i, a := range ev.Args {
				if i > 0 {
					b.WriteByte(' ')
				}
				var s string
				if json.Unmarshal(a.Value, &s) == nil {
					b.WriteString(s)
				} else if len(a.Value) > 0 {
					b.Write(a.Value)
				} else {
					b.WriteString(a.Description)
				}
			}
			con.add("console.%s: %s", ev.Type, b.String())
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			con.add("exception: %s", msg)
		case *log.EventEntryAdded:
			con.add("log %s/%s: %s %s", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text, ev.Entry.URL)
		}
	}); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	return con
}

// sibling opens another page in tb's browser context, bounded by limit:
// pages that share their storage, locks and BroadcastChannels, and the
// browser's connections to each host. Closing it (cancelling its context)
// closes that page alone.
func (tb *tab) sibling(t *testing.T, what string, limit time.Duration) (*tab, context.CancelFunc) {
	t.Helper()
	ctx, cancel := chromedp.NewContext(tb.ctx)
	t.Cleanup(cancel)
	con := watch(t, ctx, what)
	ctx, cancelTimeout := context.WithTimeout(ctx, limit)
	t.Cleanup(cancelTimeout)
	return &tab{t: t, ctx: ctx, con: con}, cancel
}

// in returns the tab for use by t, a subtest of the test that opened it:
// failures then go to the test that is running.
func (tb *tab) in(t *testing.T) *tab {
	c := *tb
	c.t = t
	return &c
}

// open loads url in the tab.
func (tb *tab) open(url string) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, chromedp.Navigate(url)); err != nil {
		tb.t.Fatalf("loading %s: %v", url, err)
	}
}

// run calls scenario(name, params) in the page, waits for its promise and
// decodes what it resolves with into out.
func (tb *tab) run(name string, params any, out any) {
	tb.t.Helper()
	p, err := json.Marshal(params)
	if err != nil {
		tb.t.Fatal(err)
	}
	expr := fmt.Sprintf("scenario(%q, %s)", name, p)
	raw, err := chromedp.Run(tb.ctx, chromedp.Evaluate[[]byte](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("%s: %v", expr, err)
	}
	tb.con.add("%s resolved: %s", name, raw)
	if err := json.Unmarshal(raw, out); err != nil {
		tb.t.Fatalf("%s resolved with %s: %v", name, raw, err)
	}
}

// transcript collects lines that arrive from other goroutines (the
// browser's events) and prints them if the test fails. Lines that arrive
// after the test has ended are dropped: t.Log would panic on them.
type transcript struct {
	mu     sync.Mutex
	lines  []string
	closed bool
	start  time.Time
}

func newTranscript(t *testing.T, what string) *transcript {
	c := &transcript{start: time.Now()}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.closed = true
		if t.Failed() {
			t.Logf("%s transcript (%d lines):\n%s", what, len(c.lines), strings.Join(c.lines, "\n"))
		}
	})
	return c
}

func (c *transcript) add(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.lines = append(c.lines, fmt.Sprintf("%7.3fs ", time.Since(c.start).Seconds())+fmt.Sprintf(format, args...))
	}
}
