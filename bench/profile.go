package main

import (
	"cmp"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime"
	rpprof "runtime/pprof"
	"strings"
	"sync/atomic"
	"time"
)

// profileDir is where server processes write their profiles, set by the
// harness's -profile flag; "" profiles nothing.
var profileDir string

// profileSeq numbers the server processes of a run, so that each one's
// profiles have names of their own.
var profileSeq atomic.Int64

// profilePrefix returns the path prefix of the next server process's
// profiles, or "" when the run is not profiled.
func profilePrefix(app string) string {
	if profileDir == "" {
		return ""
	}
	return filepath.Join(profileDir, fmt.Sprintf("%02d-%s", profileSeq.Add(1), app))
}

// startCPUProfile profiles the process's CPU into path until the
// returned stop is called; with path "" it does nothing.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := rpprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		rpprof.StopCPUProfile()
		f.Close()
	}, nil
}

// serverProfile is a server process's profiling, with -profile: a CPU
// profile of its whole life, block and mutex profiles written when it
// exits, and net/http/pprof on its (loopback) listener for snapshots.
// Profiling slows the server: a profiled run's figures are not to quote.
type serverProfile struct {
	prefix string
	cpu    *os.File
}

// startProfile starts profiling the server process; nil when prefix is
// "". With allocs, every allocation is sampled: an idle session's bytes
// are a few dozen small objects, which the default rate (one per 512
// KiB) blurs. That slows every allocation down so much that it would
// dominate a CPU profile, so only the idle-memory servers ask for it.
func startProfile(prefix string, allocs bool, mux *http.ServeMux) (*serverProfile, error) {
	if prefix == "" {
		return nil, nil
	}
	if allocs {
		runtime.MemProfileRate = 1
	}
	runtime.SetBlockProfileRate(int(10 * time.Microsecond))
	runtime.SetMutexProfileFraction(100)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	f, err := os.Create(prefix + "-cpu.pb.gz")
	if err != nil {
		return nil, err
	}
	if err := rpprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return &serverProfile{prefix: prefix, cpu: f}, nil
}

// stop ends the CPU profile and writes the block and mutex profiles.
func (p *serverProfile) stop() error {
	if p == nil {
		return nil
	}
	rpprof.StopCPUProfile()
	err := p.cpu.Close()
	for _, name := range []string{"block", "mutex"} {
		f, ferr := os.Create(p.prefix + "-" + name + ".pb.gz")
		if ferr != nil {
			return ferr
		}
		err = cmp.Or(err, rpprof.Lookup(name).WriteTo(f, 0))
		err = cmp.Or(err, f.Close())
	}
	return err
}

// snapshot saves the server's heap profile and its goroutines, grouped by
// stack with a count each, as <prefix>-<label>-heap.pb.gz and
// <prefix>-<label>-goroutine.txt. It does nothing when the run is not
// profiled.
func (s *serverProc) snapshot(label string) error {
	if s.profile == "" {
		return nil
	}
	for _, p := range []struct{ path, file string }{
		{"/debug/pprof/heap?gc=1", "-heap.pb.gz"},
		{"/debug/pprof/goroutine?debug=1", "-goroutine.txt"},
	} {
		if err := s.save(p.path, s.profile+"-"+strings.ReplaceAll(label, "/", "_")+p.file); err != nil {
			return err
		}
	}
	return nil
}

// save writes the server's answer to GET path into file.
func (s *serverProc) save(path, file string) error {
	return s.do(http.MethodGet, path, func(body io.Reader) error {
		f, err := os.Create(file)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, body)
		return cmp.Or(err, f.Close())
	})
}
