#!/usr/bin/env bash
# test.sh installs the shim's build and test tools from the lockfile and
# runs its Node tests: codec, policy, session (on fake browser globals),
# the checks on the shipped files (ES5, size budget, staleness), and the
# package as a consumer installs it (require, import, tsc).
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
npm test
