#!/usr/bin/env bash
# soak.sh runs the benchmark harness's soak (bench/, metric 9): idle
# sessions of WebSocket, SSE and long-polling held side by side, with
# heartbeats flowing, for SOAK_DURATION (10m unless set), sampling each
# server's memory, goroutines and open files. It rewrites only the soak's
# section of docs/BENCHMARKS.md and docs/benchmarks/soak.png, and fails if
# the last sample strays too far from the reference one.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

heading "build the harness (bench/)"
go -C bench build -o "$tmp/bench" .

heading "soak, ${SOAK_DURATION:-10m}"
"$tmp/bench" -soak -soak-duration "${SOAK_DURATION:-10m}" -doc docs/BENCHMARKS.md -out docs/benchmarks
