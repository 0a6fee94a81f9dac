#!/usr/bin/env bash
# chaos.sh runs the failover chaos test (redis/chaos_test.go) for
# CHAOS_DURATION (5m unless set), under -race: a client of each transport
# echoes through three nodes with failover on a real redis-server while
# random faults strike the nodes (paused past their lease, cut off from
# Redis, connections dropped, one killed), and every echo is checked. make
# test runs the same test for 30 s. CHAOS_SEED replays a run's faults: the
# test logs its seed.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

duration="${CHAOS_DURATION:-5m}"
heading "failover chaos, $duration"
COMET_CHAOS="$duration" COMET_CHAOS_SEED="${CHAOS_SEED:-}" \
	go -C redis test -race -count=1 -v -timeout 30m -run '^TestFailoverChaos$' .
