# Entry points only: each target runs a script in scripts/, which holds the
# steps, so that CI and people run the same thing.

# FUZZTIME is how long `make fuzz` runs each fuzz target; `make test` runs
# each for a few seconds only.
FUZZTIME ?= 5m

# QUICK=1 makes `make bench` a smoke run of every metric at small scale,
# in about a minute and a half, written to .cache/bench/quick/ rather
# than docs/.
QUICK ?=

# SOAK_DURATION is how long `make soak` holds its idle sessions.
SOAK_DURATION ?= 10m

# CHAOS_DURATION is how long `make chaos` makes faults in a failover
# cluster (make test does it for 30 s); CHAOS_SEED replays a run.
CHAOS_DURATION ?= 5m
CHAOS_SEED ?=

# make stress runs the race tests three times over (STRESS_COUNT) and the
# browser tests once, with every core kept busy: a loaded CI machine.

.PHONY: test bench soak fmt fuzz stress chaos

test:
	bash scripts/test.sh

bench:
	QUICK='$(QUICK)' bash scripts/bench.sh

soak:
	SOAK_DURATION='$(SOAK_DURATION)' bash scripts/soak.sh

fmt:
	bash scripts/fmt.sh

fuzz:
	FUZZTIME='$(FUZZTIME)' bash scripts/fuzz.sh

stress:
	bash scripts/stress.sh

chaos:
	CHAOS_DURATION='$(CHAOS_DURATION)' CHAOS_SEED='$(CHAOS_SEED)' bash scripts/chaos.sh
