#!/usr/bin/env bash
# bench.sh runs the benchmark harness (bench/), which measures every
# transport beside the raw primitive it is built on and writes
# docs/BENCHMARKS.md and its charts in docs/benchmarks/; then every Go
# microbenchmark of every module once, with -benchmem, keeping the output,
# which benchstat reads, in a file whose path it prints. One run on a
# shared machine is a reading, not a measurement: compare microbenchmark
# runs with benchstat before believing a difference.
#
# QUICK=1 runs the harness at small scale (about a minute and a half),
# writes to .cache/bench/quick/ instead of docs/, and skips the
# microbenchmarks.
#
# The full run leaves out the soak (metric 9), which takes ten minutes
# (make soak, scripts/soak.sh), and keeps the section it wrote; quick mode
# runs a 20-second soak.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

dir=.cache/bench
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

heading "build the harness (bench/)"
go -C bench build -o "$tmp/bench" .

if [[ -n "${QUICK:-}" ]]; then
	heading "harness, quick mode"
	"$tmp/bench" -quick
	exit 0
fi

heading "harness"
"$tmp/bench" -doc docs/BENCHMARKS.md -out docs/benchmarks

file="$dir/$(date -u +%Y%m%dT%H%M%SZ).txt"
{
	# Configuration lines, in benchstat's "key: value" form.
	echo "commit: $(git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)"
	echo "go: $(go env GOVERSION)"
} >"$file"

mapfile -t mods < <(modules)
for mod in "${mods[@]}"; do
	heading "microbenchmarks ($mod)"
	go -C "$mod" test -run='^$' -bench=. -benchmem ./... 2>&1 | tee -a "$file"
done
heading "wrote $file"
