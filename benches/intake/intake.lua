-- wrk script for `BENCH_SCENARIOS=ceiling cargo bench --bench load` (see BENCHMARKS.md): every request is a new,
-- valid default report request with its own Idempotency-Key and subject, sent with the bank token in TOKEN.
-- usage: TOKEN=... wrk -t2 -c64 -d15s -s benches/intake/intake.lua --latency http://127.0.0.1:PORT
local thread_id = 0
local token = os.getenv("TOKEN")
-- Consent given yesterday: intake refuses consent that is too old or in the future.
local consent = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() - 86400)
function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end
function init(args)
  counter = 0
  math.randomseed(os.time() + tid * 7919)
  prefix = string.format("%d-%d-%d", os.time(), tid, math.random(1, 1e9))
end
function request()
  counter = counter + 1
  local id = prefix .. "-" .. counter
  local body = string.format('{"reference":"W-%s","purpose":"loan_application","subject":{"type":"person",' ..
    '"national_id":"CW-%010d","first_name":"Bench","last_name":"Mark%s","date_of_birth":"1980-01-31"},' ..
    '"consent":{"given_at":"%s"}}', id, (tid * 100000000 + counter) % 10000000000, id, consent)
  return wrk.format("POST", "/api/v1/report-requests",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token, ["Idempotency-Key"] = id}, body)
end
