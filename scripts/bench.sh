#!/usr/bin/env bash
# bench.sh runs every benchmark of every module once, with -benchmem, and
# keeps the output, which benchstat reads, in a file whose path it prints.
# One run on a shared machine is a reading, not a measurement: compare runs
# with benchstat before believing a difference.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

dir=.cache/bench
mkdir -p "$dir"
file="$dir/$(date -u +%Y%m%dT%H%M%SZ).txt"
{
	# Configuration lines, in benchstat's "key: value" form.
	echo "commit: $(git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)"
	echo "go: $(go env GOVERSION)"
} >"$file"

mapfile -t mods < <(modules)
for mod in "${mods[@]}"; do
	heading "benchmarks ($mod)"
	go -C "$mod" test -run='^$' -bench=. -benchmem ./... 2>&1 | tee -a "$file"
done
heading "wrote $file"
