package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// mdTable is a Markdown table and the heading above it.
type mdTable struct {
	Heading string
	Header  []string
	Rows    [][]string
}

// parseTables returns the pipe tables of a Markdown document: a header
// row, a delimiter row of dashes, then body rows, each line starting with
// "|". Tables inside fenced code blocks are skipped.
func parseTables(doc string) []mdTable {
	var tables []mdTable
	lines := strings.Split(strings.ReplaceAll(doc, "\r\n", "\n"), "\n")
	heading, fenced := "", false
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		switch {
		case strings.HasPrefix(line, "```") || strings.HasPrefix(line, "~~~"):
			fenced = !fenced
			continue
		case fenced:
			continue
		case strings.HasPrefix(line, "#"):
			heading = strings.TrimSpace(strings.TrimLeft(line, "#"))
			continue
		}
		if !strings.HasPrefix(line, "|") || i+1 >= len(lines) || !isDelimiterRow(lines[i+1]) {
			continue
		}
		t := mdTable{Heading: heading, Header: splitRow(line)}
		for i += 2; i < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i]), "|"); i++ {
			t.Rows = append(t.Rows, splitRow(strings.TrimSpace(lines[i])))
		}
		i--
		tables = append(tables, t)
	}
	return tables
}

// isDelimiterRow reports whether line is a table's delimiter row, such as
// "|---|:--:|".
func isDelimiterRow(line string) bool {
	cells := splitRow(strings.TrimSpace(line))
	if len(cells) == 0 {
		return false
	}
	for _, c := range cells {
		if c = strings.Trim(c, ":"); c == "" || strings.Trim(c, "-") != "" {
			return false
		}
	}
	return true
}

// splitRow splits a table row into trimmed cells, honouring "\|".
func splitRow(line string) []string {
	line = strings.TrimPrefix(line, "|")
	line = strings.TrimSuffix(line, "|")
	var cells []string
	var cell strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '|':
			cell.WriteString(`\|`)
			i++
		case line[i] == '|':
			cells = append(cells, strings.TrimSpace(cell.String()))
			cell.Reset()
		default:
			cell.WriteByte(line[i])
		}
	}
	return append(cells, strings.TrimSpace(cell.String()))
}

// faultWords name the proxy faults of metric 7, for a table without a
// column of fallback reasons.
var faultWords = []string{"refuse", "black-hole", "blackhole", "black hole", "hang", "hung", "silent",
	"never answered"}

// quotedColumns name the columns quoted from the matrix: the case, the
// transport reached, the fallback reasons and the time to first message.
var quotedColumns = []string{"case", "transport", "reason", "first"}

// mentionsFault reports whether a cell names one of the faults.
func mentionsFault(cell string) bool {
	cell = strings.ToLower(cell)
	for _, w := range faultWords {
		if strings.Contains(cell, w) {
			return true
		}
	}
	return false
}

// faultReasons are the fallback reasons (PROTOCOL.md section 5, the why
// parameter) a client reports for the three faults of metric 7.
var faultReasons = []string{"ws_refused", "ws_silent", "ws_hung"}

// faultRows returns, from every table, the rows about the faults of
// metric 7, under their own header; tables with none are dropped. In a
// table with a column of fallback reasons, those are the rows reporting
// one of faultReasons, and the baseline: a row on WebSocket with no
// reason. Otherwise they are the rows with a cell naming a fault.
func faultRows(tables []mdTable) []mdTable {
	var out []mdTable
	for _, t := range tables {
		reasonCol, transportCol := column(t.Header, "reason"), column(t.Header, "transport")
		var rows [][]string
		for _, r := range t.Rows {
			if keepRow(r, reasonCol, transportCol) {
				rows = append(rows, r)
			}
		}
		if len(rows) > 0 {
			out = append(out, pickColumns(mdTable{Heading: t.Heading, Header: t.Header, Rows: rows}))
		}
	}
	return out
}

func keepRow(r []string, reasonCol, transportCol int) bool {
	if reasonCol < 0 || reasonCol >= len(r) {
		for _, c := range r {
			if mentionsFault(c) {
				return true
			}
		}
		return false
	}
	reasons := strings.ToLower(r[reasonCol])
	for _, w := range faultReasons {
		if strings.Contains(reasons, w) {
			return true
		}
	}
	noReason := strings.Trim(reasons, " —-") == ""
	return noReason && transportCol >= 0 && transportCol < len(r) && strings.EqualFold(strings.TrimSpace(r[transportCol]), "websocket")
}

// column returns the index of the first header naming word, or -1.
func column(header []string, word string) int {
	for i, h := range header {
		if strings.Contains(strings.ToLower(h), word) {
			return i
		}
	}
	return -1
}

// pickColumns keeps the columns of t whose header names one of
// quotedColumns, or every column if none does.
func pickColumns(t mdTable) mdTable {
	var keep []int
	for i, h := range t.Header {
		for _, w := range quotedColumns {
			if strings.Contains(strings.ToLower(h), w) {
				keep = append(keep, i)
				break
			}
		}
	}
	if len(keep) == 0 {
		return t
	}
	pick := func(cells []string) []string {
		var out []string
		for _, i := range keep {
			if i < len(cells) {
				out = append(out, cells[i])
			} else {
				out = append(out, "")
			}
		}
		return out
	}
	p := mdTable{Heading: t.Heading, Header: pick(t.Header)}
	for _, r := range t.Rows {
		p.Rows = append(p.Rows, pick(r))
	}
	return p
}

// markdown renders t.
func (t mdTable) markdown() string {
	var b strings.Builder
	row := func(cells []string) {
		b.WriteString("|")
		for _, c := range cells {
			b.WriteString(" " + c + " |")
		}
		b.WriteString("\n")
	}
	row(t.Header)
	b.WriteString("|" + strings.Repeat("---|", len(t.Header)) + "\n")
	for _, r := range t.Rows {
		row(r)
	}
	return b.String()
}

// browserFigures quotes the browser rows of the fallback matrix at path
// for the faults of metric 7, or says why there are none.
func browserFigures(path string) string {
	const name = "docs/fallback-matrix.md"
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Sprintf("**Browser figures:** none to quote: `%s` does not exist in this tree yet. "+
			"The browser tests (`e2e/`) write it; run `make bench` again once it is there.", name)
	}
	if err != nil {
		return fmt.Sprintf("**Browser figures:** `%s` could not be read: %v.", name, err)
	}
	tables := faultRows(parseTables(string(data)))
	if len(tables) == 0 {
		return fmt.Sprintf("**Browser figures:** `%s` has no table row naming a refused, black-holed or "+
			"hung WebSocket, so there is nothing to quote beside the Go client's figures.", name)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "**Browser figures**, quoted from [`%s`](fallback-matrix.md): the cases whose fallback "+
		"reasons include ws_refused, ws_silent or ws_hung, and those that stayed on WebSocket, for "+
		"comparison. The browser tests measured them, from the page's navigation start, as that file "+
		"says; this harness only quotes them.\n\n", name)
	for _, t := range tables {
		if t.Heading != "" {
			fmt.Fprintf(&b, "*%s*\n\n", t.Heading)
		}
		b.WriteString(t.markdown())
		b.WriteString("\n")
	}
	return b.String()
}
