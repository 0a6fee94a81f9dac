#!/usr/bin/env bash
# stress.sh runs the Go tests of every module under the race detector,
# three times over (-count=3), while a CPU hog keeps every core busy, then
# the browser tests of e2e/ (the fallback matrix among them) once under the
# same hog: what a busy CI machine does to timing. Tests assert behaviour,
# never speed, so every one must pass here. It prints how many package runs
# passed and failed, and exits 1 if any failed.
#
# STRESS_COUNT sets -count (default 3); STRESS_LIMIT bounds the hog, in
# seconds (default 3600), so that it stops by itself whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

count="${STRESS_COUNT:-3}"
limit="${STRESS_LIMIT:-3600}"
log=$(mktemp)
hogs=()

# stop_hogs stops the hog processes this script started, by their PIDs.
stop_hogs() {
	local pid
	for pid in "${hogs[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${hogs[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	hogs=()
}
trap 'stop_hogs; rm -f "$log"' EXIT

cores=$(nproc)
heading "CPU hog: $cores busy loop(s), at most ${limit}s"
for _ in $(seq "$cores"); do
	timeout "$limit" sh -c 'while :; do :; done' &
	hogs+=($!)
done

mapfile -t mods < <(modules)
status=0
for mod in "${mods[@]}"; do
	n=$count
	if [[ "$mod" == ./e2e ]]; then
		n=1 # the browser matrix, once: minutes of Chromium and proxies
	fi
	heading "go test -race -count=$n ($mod), under the hog"
	go -C "$mod" test -race -count="$n" -timeout 60m ./... 2>&1 | tee -a "$log" || status=1
done
stop_hogs

passed=$(grep -cE '^ok[[:space:]]' "$log" || true)
failed=$(grep -cE '^FAIL[[:space:]]' "$log" || true)
tests=$(grep -cE -- '--- FAIL' "$log" || true)
heading "stress: $passed package run(s) passed, $failed failed ($tests failing test(s)); -count=$count, $cores core(s) hogged"
if ((status != 0)); then
	grep -E -- '--- FAIL|^FAIL' "$log" | sort | uniq -c | sort -rn | head -40
fi
exit "$status"
