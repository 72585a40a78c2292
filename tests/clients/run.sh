#!/usr/bin/env bash
# Runs the independent clients (simple-salesforce from PyPI, its bulk2 client too, jsforce from npm) against a freshly started
# `creditlink sim salesforce`. Needs: `pip install -r tests/clients/requirements.txt` and `npm ci` in
# tests/clients (the CI script does both). Usage: tests/clients/run.sh [path/to/creditlink]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-$root/target/debug/creditlink}
# Without an explicit binary, build (incrementally) so a stale target/debug/creditlink is never tested.
[ $# -ge 1 ] || (cd "$root" && cargo build --quiet)
work=$(mktemp -d)
trap 'kill "$sim_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

run_sim() {
  rm -f "$work/info.json"
  "$bin" sim salesforce --listen 127.0.0.1:0 --info-file "$work/info.json" >"$work/sim.log" 2>&1 &
  sim_pid=$!
  for _ in $(seq 1 100); do [ -s "$work/info.json" ] && return 0; sleep 0.1; done
  echo "simulator did not write its info file"; cat "$work/sim.log"; exit 1
}

run_sim
python3 "$root/tests/clients/simple_salesforce_check.py" "$work/info.json" "$root"
kill "$sim_pid"; wait "$sim_pid" 2>/dev/null || true

run_sim
python3 "$root/tests/clients/simple_salesforce_bulk2_check.py" "$work/info.json"
kill "$sim_pid"; wait "$sim_pid" 2>/dev/null || true

run_sim
node "$root/tests/clients/jsforce_check.js" "$work/info.json" "$root"
echo "independent clients: 3 passed, 0 failed"
