package comet_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestApplicationImports holds the promise of the package doc: a server
// application needs only this package, a client application only client
// (and this package for the shared names). The Examples and the programs
// in examples/ are the applications checked.
func TestApplicationImports(t *testing.T) {
	const module = "github.com/seed-544bbf9f/comet"
	// The relay is an application of its own, a Serve function a server
	// opts into; the Redis broker is what a cluster's nodes opt into.
	allowed := map[string]bool{module: true, module + "/client": true, module + "/tcprelay": true, module + "/redis": true}
	files := []string{"example_test.go", "client/example_test.go"}
	programs, err := filepath.Glob("examples/*/*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range programs {
		if !strings.HasSuffix(p, "_test.go") {
			files = append(files, p)
		}
	}
	if len(files) < 3 {
		t.Fatalf("found only %v", files)
	}
	for _, name := range files {
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if (path == module || strings.HasPrefix(path, module+"/")) && !allowed[path] {
				t.Errorf("%s imports %s: applications need only comet and comet/client", name, path)
			}
		}
	}
}
