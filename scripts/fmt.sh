#!/usr/bin/env bash
# fmt.sh rewrites every Go file of every module in gofmt's format, listing
# the files it changed: the same files that test.sh checks.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

go_files | xargs -0 -r gofmt -l -w
