#!/usr/bin/env bash
# Times `creditlink records dedupe --dry-run` against a simulated org holding N credit records, and its peak
# memory (the dedupe process only; the simulator runs as its own process).
#
#     benches/records/dedupe_scan.sh [N] [PORT] [BINARY]
#
# N (default 100000) records: two banks, five product types, 1 % of tradelines present twice with another
# formatting of the account number. The seed is written to a temp dir; the simulator is stopped at the end.
set -euo pipefail
N=${1:-100000}
PORT=${2:-9471}
BIN=${3:-target/debug/creditlink}
cd "$(dirname "$0")/../.."
WORK=$(mktemp -d)
SIM_PID=
trap '[ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null; rm -rf "$WORK"' EXIT

python3 - "$N" "$WORK/seed.json" <<'PY'
import json, random, sys
n, out = int(sys.argv[1]), sys.argv[2]
seed = json.load(open("config/sim/default-seed.json"))
rnd = random.Random(7)
banks = ["0015Y00000BANKAQA5", "0015Y00000BANKBQA5"]
products = ["Installment", "Revolving", "Mortgage", "Open", "Other"]
records, i = [], 0
while len(records) < n:
    i += 1
    bank, product = banks[i % 2], products[i % 5]
    account = f"{i:010d}"
    base = {"Furnisher__c": bank, "Product_Type__c": product, "Status__c": "Active",
            "Account_Number__c": account, "Last_Reported__c": f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}"}
    records.append(base)
    if rnd.random() < 0.01 and len(records) < n:
        dup = dict(base, Account_Number__c=f"{account[:4]}-{account[4:]}", Last_Reported__c="2025-06-01")
        records.append(dup)
seed["records"]["Credit_Record__c"] = records
json.dump(seed, open(out, "w"))
PY

"$BIN" sim salesforce --listen "127.0.0.1:$PORT" --seed "$WORK/seed.json" >"$WORK/sim.log" 2>&1 &
SIM_PID=$!
for _ in $(seq 600); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT/__sim/stats" && break
  sleep 0.5
done
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
CREDITLINK__SALESFORCE__LOGIN_URL="http://127.0.0.1:$PORT" CREDITLINK__TELEMETRY__LEVEL=warn \
  CREDITLINK__SALESFORCE__TIMEOUT_MS=${TIMEOUT_MS:-120000} \
  /usr/bin/time -f 'elapsed %e s, max RSS %M KiB' \
  "$BIN" records dedupe --config config/local.toml --dry-run >"$WORK/report.json" 2>"$WORK/time.txt" || {
    cat "$WORK/time.txt"; exit 1; }
tail -1 "$WORK/time.txt"
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print('scanned', r['scanned'], 'groups', r['groups'], 'duplicates', r['duplicates'])" "$WORK/report.json"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
