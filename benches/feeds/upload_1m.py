#!/usr/bin/env python3
"""A large data-feed upload end to end, real processes: `creditlink sim salesforce` and `creditlink run`
(config/local.toml, ports and data dir overridden), an N-row CSV of the default feed (default 1,000,000 rows,
about 200 MB, written to a temp dir and deleted after), posted once with curl.

Prints: the accept time (POST until 202), the validate+map time (202 until the daemon logs the end of pass 1,
which reads, validates and maps every row without Salesforce: "upload goes through Bulk API 2.0") and its rows/s,
the processing time (202 until `completed`, status polled every 0.5 s) and end-to-end rows/s, the daemon's peak RSS (VmHWM) and RSS sampled during processing, the Salesforce API calls the
upload cost (simulator's count, before/after) per 10,000 rows, and the load average before and after.

    python3 benches/feeds/upload_1m.py [N] [BINARY]      # BINARY default target/release/creditlink
"""
import json, os, random, subprocess, sys, tempfile, time, urllib.parse, urllib.request

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
BIN = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else "target/release/creditlink")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.chdir(ROOT)
work = tempfile.mkdtemp(prefix="feeds-bench-")
procs = []


def loadavg():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def cpu_s(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key):
            return int(line.split()[1])
    return 0


try:
    print("load average before:", loadavg(), flush=True)
    # The feed: unique tradelines, 1 in 1,000 rows without a balance (kicked out), a few repeated.
    feed = os.path.join(work, "feed.csv")
    rnd = random.Random(7)
    with open(feed, "w") as f:
        f.write("account_number,product_type,date_opened,balance,credit_limit,currency,status,as_of_date,"
                "subject_type,national_id,first_name,last_name,date_of_birth,registry_number,company_name,"
                "in_dispute,previous_account_number\r\n")
        for i in range(1, N + 1):
            balance = "" if i % 1000 == 0 else f"{rnd.randint(0, 400000)}.{rnd.randint(0, 99):02d}"
            f.write(f"ACC-{i:08d},installment,2020-01-15,{balance},500000.00,EUR,active,2025-06-30,person,"
                    f"CW-19800{i:07d},Maria Josefina,Martina-Rodriguez de la Cruz,1980-01-31,,,false,\r\n")
    size = os.path.getsize(feed)
    print(f"feed: {N} rows, {size / 1e6:.1f} MB", flush=True)

    info_file = os.path.join(work, "sim.json")
    sim = subprocess.Popen([BIN, "sim", "salesforce", "--listen", "127.0.0.1:0", "--info-file", info_file],
                           stdout=open(os.path.join(work, "sim.log"), "w"), stderr=subprocess.STDOUT)
    procs.append(sim)
    while not os.path.exists(info_file) or not os.path.getsize(info_file):
        time.sleep(0.1)
    time.sleep(0.2)
    info = json.load(open(info_file))
    sim_url = info["salesforce_url"].rstrip("/")
    env = dict(os.environ,
               CREDITLINK__SALESFORCE__LOGIN_URL=sim_url,
               CREDITLINK__SERVER__LISTEN="127.0.0.1:18480",
               CREDITLINK__ADMIN__LISTEN="127.0.0.1:18481",
               CREDITLINK__STORE__DATA_DIR=os.path.join(work, "data"),
               CREDITLINK__UPLOADS__MAX_BYTES=str(max(size * 2, 300_000_000)),
               CREDITLINK__SALESFORCE__TIMEOUT_MS="120000",
               CREDITLINK__OUTBOX__LEASE_MS="180000",
               CREDITLINK__TELEMETRY__LEVEL="info")
    daemon = subprocess.Popen([BIN, "run", "--config", "config/local.toml"], env=env,
                              stdout=open(os.path.join(work, "daemon.log"), "w"), stderr=subprocess.STDOUT)
    procs.append(daemon)
    url = "http://127.0.0.1:18480"
    for _ in range(600):
        try:
            urllib.request.urlopen(f"{url}/readyz", timeout=2)
            break
        except Exception:
            time.sleep(0.2)
    bank = info["banks"][0]["token_request"]
    body = urllib.parse.urlencode(bank["form"]).encode()
    with urllib.request.urlopen(urllib.request.Request(bank["url"], data=body), timeout=30) as r:
        token = json.loads(r.read())["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    calls_before = get(f"{sim_url}/__sim/stats")["api_calls_total"]
    rss_idle = rss_kib(daemon.pid, "VmRSS")

    t0 = time.time()
    out = subprocess.run(["curl", "-s", "-X", "POST", "-H", f"Authorization: Bearer {token}",
                          "-H", "Content-Type: text/csv", "--data-binary", f"@{feed}",
                          f"{url}/api/v1/uploads?name=bench"], capture_output=True, check=True)
    t1 = time.time()
    doc = json.loads(out.stdout)
    # PERF=<file>: profile the daemon while it processes the upload.
    perf = None
    if os.environ.get("PERF"):
        perf = subprocess.Popen(["perf", "record", "-F", "499", "-g", "-p", str(daemon.pid), "-o",
                                 os.environ["PERF"]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"accepted in {t1 - t0:.1f} s: {doc.get('status')}  (load {loadavg()})", flush=True)
    rss_max = 0
    pass1 = None
    daemon_log = os.path.join(work, "daemon.log")
    while True:
        rss_max = max(rss_max, rss_kib(daemon.pid, "VmRSS"))
        if pass1 is None and "upload goes through Bulk API 2.0" in open(daemon_log, errors="replace").read():
            pass1 = time.time()
        st = get(f"{url}/api/v1/uploads/{doc['id']}", auth)
        if st["status"] in ("completed", "failed"):
            break
        time.sleep(0.5)
    t2 = time.time()
    if perf:
        perf.send_signal(2)
        perf.wait(timeout=60)
    calls = get(f"{sim_url}/__sim/stats")["api_calls_total"] - calls_before
    routes = get(f"{sim_url}/__sim/stats")["by_route"]
    print(json.dumps(st["counts"]), st["status"], st.get("failure") or "")
    if pass1:
        print(f"validate+map (pass 1, to within 0.5 s): {pass1 - t1:.1f} s, {N / (pass1 - t1):,.0f} rows/s")
    print(f"processing end to end: {t2 - t1:.1f} s, {N / (t2 - t1):,.0f} rows/s")
    print(f"daemon RSS: idle {rss_idle / 1024:.0f} MiB, max sampled {rss_max / 1024:.0f} MiB, "
          f"peak (VmHWM) {rss_kib(daemon.pid, 'VmHWM') / 1024:.0f} MiB")
    print(f"Salesforce API calls: {calls} ({calls / (N / 10_000):.2f} per 10,000 rows); "
          f"Bulk jobs {routes.get('POST /services/data/{version}/jobs/ingest', 0)}, "
          f"job polls {routes.get('GET /services/data/{version}/jobs/ingest/{id}', 0)}")
    print(f"CPU seconds: daemon {cpu_s(daemon.pid):.1f}, simulator {cpu_s(sim.pid):.1f}")
    print("load average after:", loadavg())
except Exception:
    for name in ("daemon.log", "sim.log"):
        path = os.path.join(work, name)
        if os.path.exists(path):
            print(f"--- {name}\n" + open(path).read()[-3000:])
    raise
finally:
    for p in reversed(procs):
        p.terminate()
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
    subprocess.run(["rm", "-rf", work])
