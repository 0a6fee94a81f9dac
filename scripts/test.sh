#!/usr/bin/env bash
# test.sh runs every check CI runs: the JS shim's Node tests (js/test.sh),
# then, in every Go module of the tree (the browser tests in e2e/ are one),
# gofmt, go vet, the tests under the race detector, each benchmark once (so
# that benchmarks keep compiling and running), then a short run of every
# fuzz target (FUZZTIME each, 5s unless set). It installs Chromium, for the
# browser tests, when it is missing. It stops at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

step=
results=$(mktemp)
finish() {
	local status=$?
	rm -f "$results"
	if ((status != 0)); then
		printf '\ntest.sh: FAILED at step: %s\n' "$step" >&2
	fi
	exit "$status"
}
trap finish EXIT

# -race is built with cgo, which the go command turns off when it finds no
# C compiler; say so rather than fail on a line about CGO_ENABLED.
if [[ "$(go env CGO_ENABLED)" != 1 ]]; then
	step="race detector prerequisites"
	echo "test.sh: go test -race needs cgo: install a C compiler ($(go env CC)) or set CGO_ENABLED=1" >&2
	exit 1
fi

mapfile -t mods < <(modules)

step="JS shim: Node tests (js/test.sh)"
heading "$step"
bash js/test.sh

# The browser tests (e2e/) drive Debian's chromium; a fresh machine lacks
# it. Without it they skip, except under CI=true, where they fail.
step="Chromium for the browser tests"
heading "$step"
if ! command -v chromium >/dev/null; then
	echo "chromium is missing: installing the Debian package chromium"
	sudo=()
	if ((EUID != 0)); then
		sudo=(sudo)
	fi
	export DEBIAN_FRONTEND=noninteractive
	"${sudo[@]}" apt-get update
	"${sudo[@]}" apt-get install -y chromium
fi
chromium --version

step="gofmt"
heading "$step (modules: ${mods[*]})"
unformatted=$(go_files | xargs -0 -r gofmt -l)
if [[ -n "$unformatted" ]]; then
	printf 'not gofmt-formatted (run make fmt):\n%s\n' "$unformatted" >&2
	exit 1
fi

for mod in "${mods[@]}"; do
	step="go vet ($mod)"
	heading "$step"
	go -C "$mod" vet ./...
done

for mod in "${mods[@]}"; do
	step="go test -race ($mod)"
	heading "$step"
	go -C "$mod" test -race -count=1 ./... 2>&1 | tee -a "$results"
done

for mod in "${mods[@]}"; do
	step="benchmarks, once each ($mod)"
	heading "$step"
	go -C "$mod" test -run='^$' -bench=. -benchtime=1x ./...
done

step="fuzz"
FUZZTIME="${FUZZTIME:-5s}" bash scripts/fuzz.sh

# End on go test's own summary lines, the ones CI reads to see that tests ran.
step="summary"
heading "all checks passed; go test -race:"
grep -E '^(ok|\?|FAIL)[[:space:]]' "$results" || true
