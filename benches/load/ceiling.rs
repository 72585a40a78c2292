//! Scenario `ceiling`: creditlink's durable intake side by side with the bare "axum + JSON (+ sled insert and
//! group commit)" ceiling server, under the same load, one after the other in one run.
//!
//! Three servers: the ceiling in `none` mode, the ceiling in `sled` mode, and `creditlink run` with the simulated
//! Salesforce org in outage (so nothing drains: intake alone). Each gets the same two loads:
//! - `wrk -t2 -c64 -d{BENCH_SECS}s --latency -s benches/intake/intake.lua` (closed loop, saturates the CPU);
//! - the bench's own paced open loop at `BENCH_PACED_RATE` requests/s (default 500) for 10 s, for a p99 at a rate
//!   where the CPU is not saturated.
//!
//! For each: requests/s, p50/p99 and the server's CPU µs per request (`/proc/<pid>/stat` utime + stime before and
//! after the load), then the ratios creditlink / ceiling. The ceiling binary is named by `BENCH_CEILING`
//! (`ceiling ADDR none` / `ceiling ADDR sled DIR`); without it the scenario is skipped.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::loadgen::{self, Load};
use crate::procs::{self, Proc, cpu_seconds};
use crate::{Stack, probes};

const WRK_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/intake/intake.lua");
const PACED_SECS: u64 = 10;

/// What one server did under one load.
struct Figures {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    ok: u64,
    bad: u64,
    cpu_us: f64,
    load: String,
}

impl Figures {
    fn line(&self, server: &str, load: &str) -> String {
        format!(
            "| {server} | {load} | {:.0} | {:.2} | {:.2} | {:.0} | {} ok, {} not 2xx | {} |",
            self.rate, self.p50_ms, self.p99_ms, self.cpu_us, self.ok, self.bad, self.load
        )
    }
}

pub async fn side_by_side(http: &reqwest::Client, secs: u64) -> anyhow::Result<Vec<String>> {
    let Some(ceiling) = std::env::var_os("BENCH_CEILING") else {
        let line = "- ceiling: skipped (set BENCH_CEILING to the ceiling server binary)".to_owned();
        println!("{line}");
        return Ok(vec![line]);
    };
    let rate: u32 = std::env::var("BENCH_PACED_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let mut rows = Vec::new();
    let mut wrk_figures = Vec::new();
    for mode in ["none", "sled"] {
        let dir = tempfile::Builder::new()
            .prefix("creditlink-ceiling-")
            .tempdir()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut cmd = Command::new(&ceiling);
        cmd.arg(format!("127.0.0.1:{port}")).arg(mode);
        if mode == "sled" {
            cmd.arg(dir.path().join("sled"));
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawning the ceiling server")?;
        let server = Proc::from_child(child);
        let url = format!("http://127.0.0.1:{port}");
        wait_listening(port).await?;
        let tokens = vec!["ceiling-accepts-any-bearer".to_owned()];
        let name = format!("ceiling `{mode}`");
        let wrk = wrk_load(&name, server.pid(), &url, &tokens[0], secs)?;
        rows.push(wrk.line(&name, "wrk 64 conn."));
        wrk_figures.push(wrk);
        let paced = paced_load(http, server.pid(), &url, &tokens, rate).await?;
        rows.push(paced.line(&name, &format!("paced {rate}/s")));
        drop(server);
    }
    let stack = Stack::start(http, &Vec::new()).await?;
    probes::set_outage(http, &stack.sim.url, true).await?;
    let pid = stack.daemon.proc.pid();
    let wrk = wrk_load("creditlink", pid, &stack.daemon.url, &stack.tokens[0], secs)?;
    rows.push(wrk.line("creditlink `run` (outage)", "wrk 64 conn."));
    let paced = paced_load(http, pid, &stack.daemon.url, &stack.tokens, rate).await?;
    rows.push(paced.line("creditlink `run` (outage)", &format!("paced {rate}/s")));
    let counts = probes::counts(http, &stack.daemon.admin_url, &stack.setup.admin_token).await?;
    drop(stack);

    let mut lines = vec![
        "| server | load | req/s | p50 ms | p99 ms | CPU µs/req | requests | load average |"
            .to_owned(),
        "|---|---|---|---|---|---|---|---|".to_owned(),
    ];
    lines.extend(rows);
    let (none, sled) = (&wrk_figures[0], &wrk_figures[1]);
    lines.push(format!(
        "- ratios (wrk): creditlink / ceiling sled req/s {:.2} (target ≥ 0.5), CPU/req {:.2} (target ≤ 2); creditlink / ceiling none req/s {:.2}, CPU/req {:.2}; creditlink counts after: {counts}",
        wrk.rate / sled.rate,
        wrk.cpu_us / sled.cpu_us,
        wrk.rate / none.rate,
        wrk.cpu_us / none.cpu_us,
    ));
    for l in &lines {
        println!("{l}");
    }
    Ok(lines)
}

/// Waits (bounded) until something accepts connections on 127.0.0.1:`port`.
async fn wait_listening(port: u16) -> anyhow::Result<()> {
    procs::poll_until(
        Duration::from_secs(20),
        "the ceiling server",
        || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ())
        },
    )
    .await
}

/// `wrk` against `url` for `secs`, with the server's CPU time around it. With `BENCH_PERF_DIR` set, a
/// `perf record -g` of the server during the load is written there as `<name>.perf.data`.
fn wrk_load(name: &str, pid: u32, url: &str, token: &str, secs: u64) -> anyhow::Result<Figures> {
    let perf = match std::env::var_os("BENCH_PERF_DIR") {
        Some(dir) => {
            let file: String = name
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            let out = std::path::Path::new(&dir).join(format!("{file}.perf.data"));
            Some(
                Command::new("perf")
                    .args(["record", "-F", "499", "-g", "-p", &pid.to_string(), "-o"])
                    .arg(out)
                    .args(["--", "sleep", &secs.to_string()])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .context("running perf")?,
            )
        }
        None => None,
    };
    let before = cpu_seconds(pid).context("server CPU")?;
    let out = Command::new("wrk")
        .args([
            "-t2",
            "-c64",
            &format!("-d{secs}s"),
            "--latency",
            "-s",
            WRK_SCRIPT,
        ])
        .arg(url)
        .env("TOKEN", token)
        .stdin(Stdio::null())
        .output()
        .context("running wrk (is it installed?)")?;
    let after = cpu_seconds(pid).context("server CPU")?;
    if let Some(mut perf) = perf {
        perf.wait()?;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let total: u64 = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .context("wrk: no request count")?;
    let bad: u64 = wrk_field(&text, "Non-2xx or 3xx responses:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let ok = total.saturating_sub(bad);
    Ok(Figures {
        rate: ok as f64 / secs as f64,
        p50_ms: wrk_field(&text, "50%")
            .and_then(wrk_ms)
            .context("wrk: no p50")?,
        p99_ms: wrk_field(&text, "99%")
            .and_then(wrk_ms)
            .context("wrk: no p99")?,
        ok,
        bad,
        cpu_us: (after - before) * 1e6 / total.max(1) as f64,
        load: probes::load_average(),
    })
}

/// The rest of the first line of wrk's output that starts with `prefix` (after trimming).
fn wrk_field<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(prefix))
        .map(str::trim)
}

/// wrk's latency with its unit (`812.00us`, `4.51ms`, `1.02s`) in milliseconds.
fn wrk_ms(v: &str) -> Option<f64> {
    let split = v.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse().ok()?;
    match unit {
        "us" => Some(n / 1000.0),
        "ms" => Some(n),
        "s" => Some(n * 1000.0),
        "m" => Some(n * 60_000.0),
        _ => None,
    }
}

/// The bench's paced open loop at `rate`/s for 10 s, with the server's CPU time around it.
async fn paced_load(
    http: &reqwest::Client,
    pid: u32,
    url: &str,
    tokens: &[String],
    rate: u32,
) -> anyhow::Result<Figures> {
    let before = cpu_seconds(pid).context("server CPU")?;
    let tag = format!("paced-{pid}");
    let load = Load::Paced {
        rate,
        time: Duration::from_secs(PACED_SECS),
    };
    let out = loadgen::run(http, url, tokens, &tag, load).await;
    let after = cpu_seconds(pid).context("server CPU")?;
    Ok(Figures {
        rate: out.rate(),
        p50_ms: out.quantile_ms(0.50),
        p99_ms: out.quantile_ms(0.99),
        ok: out.ok,
        bad: out.errors,
        cpu_us: (after - before) * 1e6 / (out.ok + out.errors).max(1) as f64,
        load: probes::load_average(),
    })
}
