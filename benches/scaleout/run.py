#!/usr/bin/env python3
"""Durable intake of 1, 2 and 3 `creditlink run` daemons sharing one PostgreSQL, next to one daemon on sled.

    nice -n 10 cargo build --release
    python3 benches/scaleout/run.py [SECS] [BINARY]      # BENCH_COMMIT=<label> when BINARY is not HEAD's

For each setup a fresh database (or data dir) and fresh daemons; banks post to every daemon at once: one
`wrk` per daemon with `benches/intake/intake.lua` (unique valid report requests, Demo Bank A's token), 64
connections in total split over the daemons. The simulated org is in outage during the measurement, so
nothing drains: what is measured is the durable intake (a 202 only once the request is committed). Reported:
requests/s (sum over the daemons), non-2xx answers, the worst daemon's p99, CPU µs per accepted request of
each daemon process, and the database's own CPU (every postgres process, plus the exited ones through the
postmaster's cutime/cstime) per request, with the load average before and after.

A private PostgreSQL cluster (initdb + pg_ctl, Unix socket only, in a temp dir; as root it runs as the
`creditlink-test` user) is started and stopped by the script; every child is stopped at the end.
"""
import json, os, pathlib, pwd, re, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request

SECS = int(sys.argv[1]) if len(sys.argv) > 1 else 15
REPO = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else REPO / "target/release/creditlink"
LUA = pathlib.Path(os.environ.get("INTAKE_LUA", pathlib.Path(__file__).resolve().parents[1] / "intake" / "intake.lua"))
WRK = os.environ.get("WRK", "/usr/bin/wrk")
CONNECTIONS = 64
TICK = os.sysconf("SC_CLK_TCK")
# BENCH_SETUPS="postgres:1,postgres:3" runs a subset.
SETUPS = [(b, int(n)) for b, n in (s.split(":") for s in os.environ.get(
    "BENCH_SETUPS", "sled:1,postgres:1,postgres:2,postgres:3").split(","))]
children = []


def pg_bin():
    if os.environ.get("PG_BIN"):
        return pathlib.Path(os.environ["PG_BIN"])
    dirs = sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    return dirs[-1]


def as_pg_user(cmd):
    return ["runuser", "-u", "creditlink-test", "--"] + cmd if os.geteuid() == 0 else cmd


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, token=None, headers=None):
    req = urllib.request.Request(url, method=method, data=body)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_for(what, f, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if f():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def cpu_ticks(pid, children_too=False):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children_too:
        ticks += int(fields[13]) + int(fields[14])
    return ticks


def postgres_ticks(postmaster):
    """Every live postgres process of the cluster, plus the postmaster's reaped children."""
    total = cpu_ticks(postmaster, children_too=True)
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != postmaster:
            try:
                stat = open(f"/proc/{entry}/stat").read()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                if ppid == postmaster:
                    total += cpu_ticks(int(entry))
            except (OSError, ValueError):
                pass
    return total


def loadavg():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def start_cluster(work):
    pgdir, sock = work / "pg", work / "sock"
    pgdir.mkdir()
    sock.mkdir()
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("creditlink-test")
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "creditlink-test"], check=True)
        shutil.chown(work, "creditlink-test")
        for d in (pgdir, sock):
            shutil.chown(d, "creditlink-test")
    b = pg_bin()
    subprocess.run(as_pg_user([str(b / "initdb"), "-D", str(pgdir / "data"), "-U", "postgres",
                               "--auth=trust", "--no-sync"]), check=True, stdout=subprocess.DEVNULL)
    subprocess.run(as_pg_user([str(b / "pg_ctl"), "-D", str(pgdir / "data"), "-l", str(pgdir / "log"),
                               "-o", f"-k {sock} -c listen_addresses='' -c max_connections=200 {os.environ.get('PG_OPTS', '')}",
                               "-w", "start"]), check=True, stdout=subprocess.DEVNULL)
    postmaster = int(open(pgdir / "data/postmaster.pid").readline())
    return b, pgdir, sock, postmaster


def psql(sock, sql):
    subprocess.run(["psql", "-h", str(sock), "-U", "postgres", "-d", "postgres", "-qc", sql], check=True)


def transactions(sock, db):
    """Committed plus rolled-back transactions of database `db` so far (pg_stat_database)."""
    out = subprocess.run(["psql", "-h", str(sock), "-U", "postgres", "-d", "postgres", "-Atc",
                          f"SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '{db}'"],
                         check=True, capture_output=True, text=True).stdout.strip()
    return int(out or 0)


def daemon_config(ddir, sim_url, port, backend, url_file):
    sandbox = REPO / "config/sandbox"
    store = f'backend = "postgres"\n\n[store.postgres]\nurl = {{ file = "{url_file}" }}\n' \
        if backend == "postgres" else ""
    text = f'''[server]
listen = "127.0.0.1:{port}"

[store]
data_dir = "{ddir / 'data'}"
{store}
[telemetry]
format = "json"
level = "warn"

[salesforce]
login_url = "{sim_url}"
org_id = "00D5Y000001CLNKUA4"
integration_username = "creditlink-integration@bureau.sim"

[salesforce.auth]
flow = "jwt_bearer"
consumer_key = "3MVG9creditlink.sandbox.consumer"
username = "creditlink-integration@bureau.sim"
audience = "https://login.salesforce.com"
private_key = {{ file = "{sandbox / 'jwt_private_key.pem'}" }}
client_secret = {{ file = "{sandbox / 'creditlink_client_secret'}" }}

[mappings]
dir = "{REPO / 'mappings'}"

[admin]
token = {{ file = "{sandbox / 'admin_token'}" }}
listen = "127.0.0.1:0"

[[banks]]
account_id = "0015Y00000BANKAQA5"
code = "DBA"
name = "Demo Bank A"

[[banks]]
account_id = "0015Y00000BANKBQA5"
code = "DBB"
name = "Demo Bank B"
'''
    path = ddir / "creditlink.toml"
    path.write_text(text)
    return path


def spawn(args, log):
    p = subprocess.Popen(args, stdout=open(log, "ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    children.append(p)
    return p


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def wrk(url, threads, conns, token):
    env = dict(os.environ, TOKEN=token)
    return subprocess.Popen([WRK, f"-t{threads}", f"-c{conns}", f"-d{SECS}s", "-s", str(LUA), "--latency", url],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)


def parse_wrk(out):
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    p99 = re.search(r"99%\s+(\S+)", out)
    return total, int(bad.group(1)) if bad else 0, p99.group(1) if p99 else "?", errors.group(1) if errors else ""


def to_ms(s):
    m = re.match(r"([\d.]+)(us|ms|s)", s)
    return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)] if m else float("nan")


def run_setup(work, sim_url, token, sock, postmaster, backend, n, k):
    url_file = work / f"database_url_{k}"
    if backend == "postgres":
        psql(sock, f"CREATE DATABASE bench{k}")
        url_file.write_text(f"host={sock} user=postgres dbname=bench{k}")
    daemons = []
    for d in range(n):
        ddir = work / f"setup{k}-d{d}"
        ddir.mkdir()
        port = free_port()
        config = daemon_config(ddir, sim_url, port, backend, url_file)
        proc = spawn([str(BIN), "run", "--config", str(config)], ddir / "daemon.log")
        daemons.append((proc, f"http://127.0.0.1:{port}"))
    for proc, url in daemons:
        wait_for(f"{url}/readyz", lambda: http("GET", f"{url}/readyz")[0] == 200)
    body = json.dumps({"reference": "WARM", "purpose": "loan_application",
                       "subject": {"type": "person", "national_id": "CW-1980013101", "first_name": "Warm",
                                   "last_name": "Up", "date_of_birth": "1980-01-31"},
                       "consent": {"given_at": "2026-11-20T10:00:00Z"}}).encode()
    for _, url in daemons:  # fills each daemon's bank-token cache before the outage
        for i in range(4):
            code, text = http("POST", f"{url}/api/v1/report-requests", body, token,
                              {"Content-Type": "application/json", "Idempotency-Key": f"warm-{k}-{url}-{i}"})
            assert code == 202, (code, text)
    assert http("PUT", f"{sim_url}/__sim/faults", json.dumps({"outage": True}).encode(),
                headers={"Content-Type": "application/json"})[0] == 200
    load_before = loadavg()
    before = [cpu_ticks(p.pid) for p, _ in daemons]
    pg_before = postgres_ticks(postmaster) if backend == "postgres" else 0
    tx_before = transactions(sock, f"bench{k}") if backend == "postgres" else 0
    threads = 2 if n == 1 else 1
    conns = [CONNECTIONS // n + (1 if d < CONNECTIONS % n else 0) for d in range(n)]
    loads = [wrk(url, threads, conns[d], token) for d, (_, url) in enumerate(daemons)]
    outs = [w.communicate()[0] for w in loads]
    after = [cpu_ticks(p.pid) for p, _ in daemons]
    pg_after = postgres_ticks(postmaster) if backend == "postgres" else 0
    load_after = loadavg()
    http("DELETE", f"{sim_url}/__sim/faults")
    for proc, _ in daemons:
        stop(proc)
    # Stopped daemons have reported their sessions' statistics (includes their shutdown's few transactions).
    tx = transactions(sock, f"bench{k}") - tx_before if backend == "postgres" else 0
    results = [parse_wrk(o) for o in outs]
    ok = [t - bad for t, bad, _, _ in results]
    total_ok = sum(ok)
    rps = total_ok / SECS
    per_daemon_us = [(a - b) / TICK * 1e6 / max(o, 1) for a, b, o in zip(after, before, ok)]
    pg_us = (pg_after - pg_before) / TICK * 1e6 / max(total_ok, 1)
    worst_p99 = max((r[2] for r in results), key=to_ms)
    bad = sum(r[1] for r in results)
    errs = "; ".join(r[3] for r in results if r[3])
    label = f"{n} daemon{'s' if n > 1 else ''}, {backend}"
    print(f"{label}: {rps:,.0f} req/s accepted ({total_ok} in {SECS} s, {bad} non-2xx{', socket errors: ' + errs if errs else ''}), "
          f"worst p99 {worst_p99}; CPU per request: daemons "
          f"{', '.join(f'{u:.0f}' for u in per_daemon_us)} µs"
          + (f", postgres {pg_us:.0f} µs; {tx / max(total_ok, 1):.1f} database transactions per request"
             if backend == "postgres" else "")
          + f"; load {load_before} → {load_after}", flush=True)
    return label, rps, total_ok, bad, worst_p99, per_daemon_us, pg_us if backend == "postgres" else None, \
        load_before, load_after


def main():
    assert BIN.exists(), f"build first: {BIN}"
    work = pathlib.Path(tempfile.mkdtemp(prefix="cl-scaleout-"))
    pgctl = None
    try:
        b, pgdir, sock, postmaster = start_cluster(work)
        pgctl = [str(b / "pg_ctl"), "-D", str(pgdir / "data"), "-m", "fast", "-w", "stop"]
        info_file = work / "sim.json"
        spawn([str(BIN), "sim", "salesforce", "--listen", "127.0.0.1:0", "--info-file", str(info_file)],
              work / "sim.log")
        wait_for("the simulator's info file", lambda: info_file.exists() and json.loads(info_file.read_text()))
        info = json.loads(info_file.read_text())
        sim_url = info["salesforce_url"]
        bank = next(b for b in info["banks"] if b["account_id"] == "0015Y00000BANKAQA5")
        req = bank["token_request"]
        form = urllib.parse.urlencode(req["form"]).encode()
        code, text = http("POST", req["url"], form, headers={"Content-Type": "application/x-www-form-urlencoded"})
        token = json.loads(text)["access_token"]
        commit = os.environ.get("BENCH_COMMIT") or subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        print(f"binary {BIN}, commit {commit}, "
              f"{os.cpu_count()} CPUs, {SECS} s per setup, {CONNECTIONS} connections in total", flush=True)
        rows = [run_setup(work, sim_url, token, sock, postmaster, backend, n, k)
                for k, (backend, n) in enumerate(SETUPS)]
        base = next((r for r in rows if r[0] == "1 daemon, postgres"), rows[0])[1]
        print("\n| setup | accepted req/s | vs 1 daemon on PostgreSQL | non-2xx | worst p99 | daemon CPU µs/request (each) | postgres CPU µs/request | load avg before → after |")
        print("|---|---|---|---|---|---|---|---|")
        for label, rps, _, bad, p99, per, pg, lb, la in rows:
            print(f"| {label} | {rps:,.0f} | {rps / base:.2f}× | {bad} | {p99} | {', '.join(f'{u:.0f}' for u in per)} | "
                  f"{'' if pg is None else f'{pg:.0f}'} | {lb} → {la} |")
    finally:
        for p in children:
            stop(p)
        if pgctl:
            subprocess.run(as_pg_user(pgctl), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if os.environ.get("KEEP_PG_LOG"):
            shutil.copy(work / "pg/log", os.environ["KEEP_PG_LOG"])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    import urllib.parse
    main()
