#!/usr/bin/env bash
# The dashboard's browser suite: starts one `creditlink sandbox` (all ports free ones on loopback), runs every
# test against it with Debian's chromium driven by playwright-core, and stops it. Needs `apt-get install
# chromium` and `npm ci` in tests/browser (the CI script does both).
# Usage: tests/browser/run.sh [path/to/creditlink]   (SCREENSHOTS=docs/screenshots also refreshes the README's;
# TESTS="widget.test.mjs" runs only those files, in that order)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-$root/target/debug/creditlink}
[ $# -ge 1 ] || (cd "$root" && cargo build --quiet)
work=$(mktemp -d)
sandbox_pid=
trap '[ -n "$sandbox_pid" ] && kill "$sandbox_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

"$bin" sandbox --data-dir "$work/data" --listen 127.0.0.1:0 >"$work/sandbox.log" 2>&1 &
sandbox_pid=$!
for _ in $(seq 1 300); do [ -s "$work/data/sandbox.json" ] && break; sleep 0.1; done
[ -s "$work/data/sandbox.json" ] || { echo "the sandbox did not start"; cat "$work/sandbox.log"; exit 1; }

export SANDBOX_JSON="$work/data/sandbox.json"
export DOWNLOADS="$work/downloads"
export CHROMIUM="${CHROMIUM:-$(command -v chromium || command -v chromium-browser)}"
if [ -n "${SCREENSHOTS:-}" ]; then export SCREENSHOTS="$root/$SCREENSHOTS"; fi
cd "$root/tests/browser"
status=0
# dashboard.test.mjs must run first (node runs the files in turn): it counts every request of both banks
# before the others add their own.
node --test --test-concurrency=1 --test-timeout=120000 ${TESTS:-dashboard.test.mjs widget.test.mjs uploads.test.mjs} || status=$?
if [ "$status" -ne 0 ]; then echo "--- sandbox log (tail)"; tail -50 "$work/sandbox.log"; fi
exit "$status"
