package comet_test

import (
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// TestDocSnippets keeps the code in package docs true: every indented
// code block of these package comments is an excerpt, line for line (up
// to indentation), of an Example that compiles and runs with its Output
// checked.
func TestDocSnippets(t *testing.T) {
	for _, tc := range []struct{ doc, example string }{
		{"comet.go", "example_test.go"},
		{"client/doc.go", "client/example_test.go"},
	} {
		f, err := parser.ParseFile(token.NewFileSet(), tc.doc, nil, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			t.Fatal(err)
		}
		example, err := os.ReadFile(tc.example)
		if err != nil {
			t.Fatal(err)
		}
		haystack := trimmedLines(string(example))
		blocks := codeBlocks(f.Doc.Text())
		if len(blocks) == 0 {
			t.Errorf("%s: no code block in the package doc", tc.doc)
		}
		for _, block := range blocks {
			if !containsRun(haystack, block) {
				t.Errorf("%s: this code block is not an excerpt of %s:\n%s", tc.doc, tc.example, strings.Join(block, "\n"))
			}
		}
	}
}

// codeBlocks returns the indented blocks of a doc comment's text, each as
// its lines without indentation.
func codeBlocks(doc string) [][]string {
	var blocks [][]string
	var cur []string
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "\t") {
			cur = append(cur, strings.TrimSpace(line))
			continue
		}
		if len(cur) > 0 {
			blocks = append(blocks, cur)
			cur = nil
		}
	}
	if len(cur) > 0 {
		blocks = append(blocks, cur)
	}
	return blocks
}

func trimmedLines(s string) []string {
	lines := strings.Split(s, "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return lines
}

// containsRun reports whether want appears in lines as consecutive lines.
func containsRun(lines, want []string) bool {
	for i := 0; i+len(want) <= len(lines); i++ {
		match := true
		for j := range want {
			if lines[i+j] != want[j] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}
