//! creditlink's load benchmark: real `creditlink run` and `creditlink sim salesforce` processes on 127.0.0.1,
//! a 64-client load generator in this process, and the vault's crypto in-process. See BENCHMARKS.md.
//!
//! ```text
//! cargo bench --bench load                              # every scenario (about 5 minutes)
//! BENCH_SCENARIOS=intake,vault cargo bench --bench load # a subset: intake, api, latency, rss, vault, sandbox
//! BENCH_SECS=15 BENCH_QUEUE=100000 cargo bench --bench load
//! ```
//! Speed is never asserted: the bench prints figures (and a Markdown summary at the end) and exits 0 unless
//! a scenario could not run at all. Every wait is bounded; processes are killed and temp dirs removed on exit.

mod ceiling;
mod history;
mod loadgen;
mod probes;
mod procs;
mod scenarios;
mod vault;

use std::process::ExitCode;
use std::time::Duration;

use loadgen::{Load, Outcome};
use procs::{Daemon, DaemonSetup, Overrides, Sim};

const CLIENTS: usize = 64;
const MB: f64 = 1e6;

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_all()) {
        Ok(summary) => {
            println!("\n## Summary\n\n{}", summary.join("\n"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

struct Settings {
    scenarios: Vec<String>,
    secs: u64,
    queue: u64,
    history: u64,
}

impl Settings {
    fn from_env() -> Settings {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Settings {
            scenarios: var("BENCH_SCENARIOS")
                .unwrap_or_else(|| "intake,api,latency,rss,vault".into())
                .split(',')
                .map(|s| s.trim().to_owned())
                .collect(),
            secs: var("BENCH_SECS").and_then(|v| v.parse().ok()).unwrap_or(15),
            queue: var("BENCH_QUEUE")
                .and_then(|v| v.parse().ok())
                .unwrap_or(100_000),
            history: var("BENCH_HISTORY")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        }
    }

    fn wants(&self, name: &str) -> bool {
        self.scenarios.iter().any(|s| s == name)
    }
}

async fn run_all() -> anyhow::Result<Vec<String>> {
    let settings = Settings::from_env();
    let mut summary = vec![
        format!("- machine: {}", machine()),
        format!("- load average at start: {}", probes::load_average()),
    ];
    let http = loadgen::http_client()?;
    if settings.wants("intake") {
        summary.extend(scenarios::intake(&http, settings.secs).await?);
    }
    if settings.wants("api") {
        summary.extend(scenarios::api_calls(&http).await?);
    }
    if settings.wants("latency") {
        summary.extend(scenarios::moderate_latency(&http).await?);
    }
    if settings.wants("rss") {
        summary.extend(scenarios::rss_and_restart(&http, settings.queue, settings.history).await?);
    }
    if settings.wants("sandbox") {
        summary.extend(scenarios::sandbox_vs_run(&http, settings.secs).await?);
    }
    if settings.wants("ceiling") {
        summary.extend(ceiling::side_by_side(&http, settings.secs).await?);
    }
    if settings.wants("vault") {
        let v = tokio::task::spawn_blocking(vault::run).await??;
        let line = format!(
            "- vault (5 MiB, MB/s, median of 15): Vault::put {:.0}, Vault::get {:.0}; raw XChaCha20-Poly1305 encrypt {:.0}, decrypt {:.0}; raw AEAD + SHA-256 encrypt {:.0}, decrypt {:.0}; put/raw {:.2}, get/raw {:.2}  (load {})",
            v.vault_put,
            v.vault_get,
            v.raw_encrypt,
            v.raw_decrypt,
            v.raw_encrypt_sha,
            v.raw_decrypt_sha,
            v.vault_put / v.raw_encrypt,
            v.vault_get / v.raw_decrypt,
            probes::load_average()
        );
        println!("{line}");
        summary.push(line);
    }
    Ok(summary)
}

/// A fresh simulator and daemon (own temp dir), bank tokens, and a short warm-up (token cache, connections).
/// Field order is drop order: the processes are killed before their temp dir is removed.
struct Stack {
    daemon: Daemon,
    sim: Sim,
    setup: DaemonSetup,
    tokens: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Stack {
    async fn start(http: &reqwest::Client, overrides: &Overrides) -> anyhow::Result<Stack> {
        let dir = tempfile::Builder::new()
            .prefix("creditlink-bench-")
            .tempdir()?;
        let sim = Sim::start(dir.path()).await?;
        let setup = DaemonSetup::new(dir.path(), &sim.url)?;
        let daemon = setup.start(overrides, http).await?;
        let tokens = loadgen::bank_tokens(http, &sim.info).await?;
        let warm = loadgen::run(
            http,
            &daemon.url,
            &tokens,
            "warm",
            Load::Count {
                clients: 2,
                requests: 8,
            },
        )
        .await;
        anyhow::ensure!(warm.errors == 0, "warm-up failed: {:?}", warm.error_samples);
        probes::drained(
            http,
            &daemon.admin_url,
            &setup.admin_token,
            8,
            Duration::from_secs(30),
        )
        .await?;
        Ok(Stack {
            daemon,
            sim,
            setup,
            tokens,
            _dir: dir,
        })
    }

    async fn load(&self, http: &reqwest::Client, tag: &str, load: Load) -> Outcome {
        loadgen::run(http, &self.daemon.url, &self.tokens, tag, load).await
    }

    async fn drained(
        &self,
        http: &reqwest::Client,
        expected: u64,
        limit: Duration,
    ) -> anyhow::Result<serde_json::Value> {
        probes::drained(
            http,
            &self.daemon.admin_url,
            &self.setup.admin_token,
            expected,
            limit,
        )
        .await
    }

    async fn delivery_latencies(&self, http: &reqwest::Client) -> anyhow::Result<Vec<u64>> {
        probes::delivery_latencies_us(http, &self.daemon.admin_url, &self.setup.admin_token).await
    }
}

fn describe(name: &str, o: &Outcome) -> String {
    let line = format!(
        "- {name}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms ({} ok, {} errors in {:.1} s; load {}){}",
        o.rate(),
        o.quantile_ms(0.50),
        o.quantile_ms(0.99),
        o.quantile_ms(1.0),
        o.ok,
        o.errors,
        o.elapsed.as_secs_f64(),
        probes::load_average(),
        if o.error_samples.is_empty() {
            String::new()
        } else {
            format!(" errors: {:?}", o.error_samples)
        },
    );
    println!("{line}");
    line
}

fn latency_line(name: &str, us: &[u64]) -> String {
    let ms = |q| loadgen::quantile(us, q) as f64 / 1000.0;
    let line = format!(
        "- {name}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} delivered messages",
        ms(0.5),
        ms(0.99),
        ms(1.0),
        us.len()
    );
    println!("{line}");
    line
}

/// `nproc`, CPU model, memory and kernel, for the report.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("?".into(), |s| s.trim().to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = meminfo
        .lines()
        .next()
        .unwrap_or("?")
        .split_whitespace()
        .nth(1)
        .and_then(|kb| kb.parse::<u64>().ok());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{} cpus ({model}), {:.1} GiB RAM, Linux {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        mem.unwrap_or(0) as f64 / 1024.0 / 1024.0,
        kernel.trim()
    )
}
