#!/usr/bin/env bash
# test.sh runs every check CI runs: the JS shim's Node tests (js/test.sh),
# then, in every Go module of the tree (the browser tests in e2e/ are one),
# gofmt, go vet, the tests under the race detector, each benchmark once (so
# that benchmarks keep compiling and running), then a short run of every
# fuzz target (FUZZTIME each, 5s unless set). It installs the Debian
# packages of the browser and proxy tests when they are missing (where
# there is no apt-get those tests skip, or under CI=true the script
# fails), and shows the browser tests' fallback matrix. It stops at the
# first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

step=
results=$(mktemp)
sudo=()
if ((EUID != 0)); then
	sudo=(sudo)
fi
policy_rc=/usr/sbin/policy-rc.d
policy_made=

# drop_policy removes the policy-rc.d this script made, if it made one.
drop_policy() {
	if [[ -n "$policy_made" ]]; then
		"${sudo[@]}" rm -f "$policy_made"
		policy_made=
	fi
}

# sbin prints the path of program $1: on PATH, or else in /usr/sbin, where
# Debian puts nginx and haproxy and which not every user's PATH holds.
sbin() {
	command -v "$1" || { [[ -x "/usr/sbin/$1" ]] && echo "/usr/sbin/$1"; }
}

finish() {
	local status=$?
	rm -f "$results"
	drop_policy
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

# The WebSocket libraries the browser tests run with Comet, from their
# lockfile (e2e/libs_*_test.go skip without them, or under CI=true fail).
step="WebSocket libraries of the browser tests (e2e/browserlibs): npm ci"
heading "$step"
(cd e2e/browserlibs && npm ci --no-audit --no-fund)

# The browser tests (e2e/) drive Debian's chromium, and put Debian's nginx,
# haproxy and apache2 between it and the Comet server, and the TCP relay's
# tests speak to Debian's redis-server through it; a fresh machine lacks
# them.
# Without them those tests skip, except under CI=true, where they fail.
# Each package installs the program of its name, which sbin finds.
packages=(chromium nginx haproxy apache2 redis-server)
step="Debian packages for the browser and proxy tests: ${packages[*]}"
heading "$step"
missing=()
for pkg in "${packages[@]}"; do
	sbin "$pkg" >/dev/null || missing+=("$pkg")
done
cannot=
if ! command -v apt-get >/dev/null; then
	cannot="there is no apt-get"
elif ((EUID != 0)) && ! command -v sudo >/dev/null; then
	cannot="apt-get needs root, and there is no sudo"
fi
if ((${#missing[@]} > 0)) && [[ -n "$cannot" ]]; then
	if [[ "${CI:-}" == true ]]; then
		echo "test.sh: CI=true, but ${missing[*]} not installed, and $cannot: install them before the tests" >&2
		exit 1
	fi
	echo "test.sh: ${missing[*]} not installed, and $cannot: the browser and proxy tests that need them will be skipped"
elif ((${#missing[@]} > 0)); then
	echo "missing: installing the Debian packages ${missing[*]}"
	# Installing nginx or haproxy starts its default instance (nginx on
	# :80) unless policy-rc.d refuses service starts: make one that does
	# for the install, unless one is in place already, which is left
	# alone. set -C creates it only if it does not exist; finish removes
	# the one made here, on failure too.
	# shellcheck disable=SC2016 # $1 is the inner shell's
	if [[ ! -e "$policy_rc" ]] &&
		"${sudo[@]}" sh -c 'set -C; printf "#!/bin/sh\n# scripts/test.sh: no service starts while it installs\nexit 101\n" >"$1"' sh "$policy_rc" 2>/dev/null; then
		policy_made=$policy_rc
		"${sudo[@]}" chmod 755 "$policy_rc"
	fi
	export DEBIAN_FRONTEND=noninteractive
	"${sudo[@]}" apt-get update
	"${sudo[@]}" apt-get install -y "${missing[@]}"
	drop_policy
fi
# The first line of each version, of the programs there are: chromium
# takes --version; nginx prints -v on stderr, haproxy on several lines.
for pkg in "${packages[@]}"; do
	bin=$(sbin "$pkg") || continue
	if [[ "$pkg" == chromium ]]; then
		"$bin" --version
	else
		"$bin" -v 2>&1 | sed -n 1p
	fi
done

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

# The browser tests' fallback matrix (e2e/matrix_test.go) is written
# here, and shown at the end.
export COMET_MATRIX="${COMET_MATRIX:-${TMPDIR:-/tmp}/comet-fallback-matrix.md}"
rm -f "$COMET_MATRIX"

# -timeout: a package's tests may take longer than go test's default 10
# minutes on a busy machine (e2e's browsers and process clusters); each
# test bounds its own waits.
for mod in "${mods[@]}"; do
	step="go test -race ($mod)"
	heading "$step"
	go -C "$mod" test -race -count=1 -timeout 30m ./... 2>&1 | tee -a "$results"
done

for mod in "${mods[@]}"; do
	step="benchmarks, once each ($mod)"
	heading "$step"
	go -C "$mod" test -run='^$' -bench=. -benchtime=1x ./...
done

step="fuzz"
FUZZTIME="${FUZZTIME:-5s}" bash scripts/fuzz.sh

step="summary"
if [[ -s "$COMET_MATRIX" ]]; then
	heading "fallback matrix ($COMET_MATRIX)"
	cat "$COMET_MATRIX"
fi

# End on go test's own summary lines, the ones CI reads to see that tests ran.
heading "all checks passed; go test -race:"
grep -E '^(ok|\?|FAIL)[[:space:]]' "$results" || true
