# Entry points only: each target runs a script in scripts/, which holds the
# steps, so that CI and people run the same thing.

# FUZZTIME is how long `make fuzz` runs each fuzz target; `make test` runs
# each for a few seconds only.
FUZZTIME ?= 1m

.PHONY: test bench fmt fuzz

test:
	bash scripts/test.sh

bench:
	bash scripts/bench.sh

fmt:
	bash scripts/fmt.sh

fuzz:
	FUZZTIME='$(FUZZTIME)' bash scripts/fuzz.sh
