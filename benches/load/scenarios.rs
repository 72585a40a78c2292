//! The scenarios that drive the real processes (1-4 of BENCHMARKS.md); the vault's is in `vault`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::loadgen::{self, Load, Outcome};
use crate::{CLIENTS, MB, Stack, describe, history, latency_line, probes, procs};

/// Scenarios 1 and 3 (full load): durable intake under three durability modes; for group commit also the
/// intake→Salesforce latency and API calls of the same run once the queue has drained.
pub async fn intake(http: &reqwest::Client, secs: u64) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    let mut rates = Vec::new();
    let modes = std::env::var("BENCH_INTAKE_MODES")
        .unwrap_or_else(|_| "group_commit,none,per_request".into());
    for mode in modes.split(',').map(str::trim) {
        let stack = Stack::start(
            http,
            &vec![("CREDITLINK__STORE__DURABILITY", mode.to_owned())],
        )
        .await?;
        let before = probes::api_calls(http, &stack.sim.url).await?;
        let load = Load::Duration {
            clients: CLIENTS,
            time: Duration::from_secs(secs),
        };
        let cpu = |pid: u32| procs::cpu_seconds(pid).unwrap_or(0.0);
        let (d0, s0, g0) = (
            cpu(stack.daemon.proc.pid()),
            cpu(stack.sim.pid()),
            cpu(std::process::id()),
        );
        let out = stack.load(http, mode, load).await;
        let (d1, s1, g1) = (
            cpu(stack.daemon.proc.pid()),
            cpu(stack.sim.pid()),
            cpu(std::process::id()),
        );
        let line = format!(
            "- CPU seconds used during that load ({mode}; 2 cores × {secs} s = {} available): daemon {:.1}, simulator {:.1}, load generator {:.1}; daemon {:.0} µs per request",
            2 * secs,
            d1 - d0,
            s1 - s0,
            g1 - g0,
            (d1 - d0) * 1e6 / out.ok.max(1) as f64
        );
        lines.push(describe(
            &format!("intake, durability={mode}, {CLIENTS} clients, {secs} s"),
            &out,
        ));
        println!("{line}");
        lines.push(line);
        rates.push((out.errors == 0).then(|| out.rate()));
        if mode == "group_commit" {
            lines.extend(full_load_delivery(http, &stack, &out, before).await?);
        }
    }
    // A mode whose clients mostly failed has no meaningful rate to compare with.
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}", a / b),
        _ => "n/a (a run had errors)".to_owned(),
    };
    if let [group, none, per_request] = rates[..]
        && modes == "group_commit,none,per_request"
    {
        let line = format!(
            "- ratios: group_commit / none = {}, group_commit / per_request = {}",
            ratio(group, none),
            ratio(group, per_request)
        );
        println!("{line}");
        lines.push(line);
    }
    Ok(lines)
}

/// After the group-commit run: wait (bounded) for the queue to drain, then intake→Salesforce latency and API
/// calls per 1,000. A queue that does not drain in time is reported, not fatal.
async fn full_load_delivery(
    http: &reqwest::Client,
    stack: &Stack,
    out: &Outcome,
    calls_before: u64,
) -> anyhow::Result<Vec<String>> {
    let drain_start = Instant::now();
    if stack
        .drained(http, out.ok + 8, Duration::from_secs(600))
        .await
        .is_err()
    {
        let line =
            "- the queue of the full-load run had not drained within 600 s; no delivery latency"
                .to_owned();
        println!("{line}");
        return Ok(vec![line]);
    }
    let drain = drain_start.elapsed();
    let calls = probes::api_calls(http, &stack.sim.url).await? - calls_before;
    let us = stack.delivery_latencies(http).await?;
    let mut lines = vec![latency_line(
        "intake→Salesforce at full load (64 clients, group commit)",
        &us,
    )];
    let line = format!(
        "- API calls in that run: {calls} for {} requests = {:.2} per 1,000; queue drained {:.1} s after the load stopped",
        out.ok,
        calls as f64 * 1000.0 / out.ok as f64,
        drain.as_secs_f64()
    );
    println!("{line}");
    lines.push(line);
    Ok(lines)
}

/// Scenario 2: Salesforce API calls per 1,000 requests, batched vs one record per call.
pub async fn api_calls(http: &reqwest::Client) -> anyhow::Result<Vec<String>> {
    const N: u64 = 5_000;
    let mut lines = Vec::new();
    for batch in ["200", "1"] {
        let stack = Stack::start(
            http,
            &vec![("CREDITLINK__PUSHER__BATCH_MAX", batch.to_owned())],
        )
        .await?;
        let before = probes::api_calls(http, &stack.sim.url).await?;
        let out = stack
            .load(
                http,
                &format!("api{batch}"),
                Load::Count {
                    clients: CLIENTS,
                    requests: N,
                },
            )
            .await;
        stack
            .drained(http, out.ok + 8, Duration::from_secs(300))
            .await?;
        let calls = probes::api_calls(http, &stack.sim.url).await? - before;
        let routes = probes::api_calls_by_route(http, &stack.sim.url).await?;
        let line = format!(
            "- API calls, batch_max={batch}: {calls} calls for {} requests = {:.2} per 1,000 ({} errors; load {}; all routes since sim start: {routes})",
            out.ok,
            calls as f64 * 1000.0 / out.ok as f64,
            out.errors,
            probes::load_average()
        );
        println!("{line}");
        lines.push(line);
    }
    Ok(lines)
}

/// Scenario 3 (moderate rate): intake→Salesforce latency at 200 requests/s, paced.
pub async fn moderate_latency(http: &reqwest::Client) -> anyhow::Result<Vec<String>> {
    const RATE: u32 = 200;
    let stack = Stack::start(http, &Vec::new()).await?;
    let before = probes::api_calls(http, &stack.sim.url).await?;
    let out = stack
        .load(
            http,
            "moderate",
            Load::Paced {
                rate: RATE,
                time: Duration::from_secs(10),
            },
        )
        .await;
    let mut lines = vec![describe(
        &format!("intake at a paced {RATE} req/s, 10 s"),
        &out,
    )];
    stack
        .drained(http, out.ok + 8, Duration::from_secs(120))
        .await?;
    let calls = probes::api_calls(http, &stack.sim.url).await? - before;
    let us = stack.delivery_latencies(http).await?;
    lines.push(latency_line(
        &format!("intake→Salesforce at a moderate {RATE} req/s (healthy org)"),
        &us,
    ));
    let line = format!(
        "- API calls at {RATE} req/s: {calls} for {} requests = {:.2} per 1,000",
        out.ok,
        calls as f64 * 1000.0 / out.ok as f64
    );
    println!("{line}");
    lines.push(line);
    Ok(lines)
}

/// Scenario 4: RSS idle and with `queue` requests queued behind an outage; restart time with them pending.
pub async fn rss_and_restart(
    http: &reqwest::Client,
    queue: u64,
    history: u64,
) -> anyhow::Result<Vec<String>> {
    let stack = Stack::start(http, &Vec::new()).await?;
    // `_dir` is bound first so it is dropped last, after the processes are killed.
    let Stack {
        _dir,
        sim,
        setup,
        daemon,
        tokens,
    } = stack;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = daemon.proc.rss_bytes()?;
    probes::set_outage(http, &sim.url, true).await?;

    let pid = daemon.proc.pid();
    let peak = Arc::new(AtomicU64::new(0));
    let sampling = {
        let peak = peak.clone();
        tokio::spawn(async move {
            let status = format!("/proc/{pid}/status");
            // Bounded: at most 20 minutes of 100 ms samples; aborted when the load ends.
            for _ in 0..(20 * 60 * 10) {
                let Ok(text) = std::fs::read_to_string(&status) else {
                    break;
                };
                if let Some(kb) = text
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                {
                    peak.fetch_max(kb * 1024, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let out = loadgen::run(
        http,
        &daemon.url,
        &tokens,
        "queue",
        Load::Count {
            clients: CLIENTS,
            requests: queue,
        },
    )
    .await;
    let mut lines = vec![describe(
        &format!("intake of {queue} requests during a Salesforce outage"),
        &out,
    )];
    tokio::time::sleep(Duration::from_secs(2)).await;
    let queued_rss = daemon.proc.rss_bytes()?;
    sampling.abort();
    let peak = peak.load(Ordering::Relaxed).max(queued_rss);
    let counts = probes::counts(http, &daemon.admin_url, &setup.admin_token).await?;
    let stop = daemon.proc.terminate(Duration::from_secs(60)).await?;
    probes::set_outage(http, &sim.url, false).await?;
    let mut lines_history = None;
    if history > 0 {
        let took = history::seed_delivered(&setup.data_dir.join("store"), history).await?;
        let line = format!(
            "- seeded {history} delivered messages into the stopped daemon's store in {:.1} s ({:.0}/s; load {})",
            took.as_secs_f64(),
            history as f64 / took.as_secs_f64(),
            probes::load_average()
        );
        println!("{line}");
        lines_history = Some(line);
    }

    let restarted = setup.start(&Vec::new(), http).await?;
    let ready = restarted.started.elapsed();
    let after_rss = restarted.proc.rss_bytes()?;
    let pending_after = probes::counts(http, &restarted.admin_url, &setup.admin_token).await?;
    let line = format!(
        "- RSS: idle {:.1} MB; with {} queued {:.1} MB (peak sampled {:.1} MB); counts {counts}; SIGTERM→exit {:.2} s; restart→/readyz 200 {:.2} s; RSS after restart {:.1} MB; counts after restart {pending_after} (load {})",
        idle as f64 / MB,
        out.ok,
        queued_rss as f64 / MB,
        peak as f64 / MB,
        stop.as_secs_f64(),
        ready.as_secs_f64(),
        after_rss as f64 / MB,
        probes::load_average()
    );
    println!("{line}");
    lines.extend(lines_history);
    lines.push(line);

    let drain_start = Instant::now();
    let drained = probes::drained(
        http,
        &restarted.admin_url,
        &setup.admin_token,
        // The delivered count includes the seeded history.
        out.ok + history,
        Duration::from_secs(180),
    )
    .await;
    let line = match drained {
        Ok(_) => format!(
            "- after restart the {} queued requests drained to Salesforce in {:.1} s = {:.0} records/s (load {})",
            out.ok,
            drain_start.elapsed().as_secs_f64(),
            out.ok as f64 / drain_start.elapsed().as_secs_f64(),
            probes::load_average()
        ),
        Err(_) => {
            let c = probes::counts(http, &restarted.admin_url, &setup.admin_token).await?;
            format!("- after restart the queue had not drained within 180 s: {c}")
        }
    };
    println!("{line}");
    lines.push(line);
    restarted.proc.terminate(Duration::from_secs(60)).await?;
    Ok(lines)
}

/// Scenario 6: `creditlink sandbox` (one process) against `creditlink run` + `creditlink sim salesforce` under
/// the same intake load, one after the other in the same run; the ratio of their request rates.
pub async fn sandbox_vs_run(http: &reqwest::Client, secs: u64) -> anyhow::Result<Vec<String>> {
    let load = || Load::Duration {
        clients: CLIENTS,
        time: Duration::from_secs(secs),
    };
    let stack = Stack::start(http, &Vec::new()).await?;
    let run = stack.load(http, "run", load()).await;
    let mut lines = vec![describe(
        &format!("creditlink run + sim salesforce, {CLIENTS} clients, {secs} s"),
        &run,
    )];
    drop(stack);

    let dir = tempfile::Builder::new()
        .prefix("creditlink-bench-")
        .tempdir()?;
    let sandbox = procs::Sandbox::start(dir.path()).await?;
    let tokens = loadgen::bank_tokens(http, &sandbox.info).await?;
    let warm = loadgen::run(
        http,
        &sandbox.url,
        &tokens,
        "sandbox-warm",
        Load::Count {
            clients: 2,
            requests: 8,
        },
    )
    .await;
    anyhow::ensure!(
        warm.errors == 0,
        "sandbox warm-up failed: {:?}",
        warm.error_samples
    );
    let cpu0 = procs::cpu_seconds(sandbox.proc.pid()).unwrap_or(0.0);
    let boxed = loadgen::run(http, &sandbox.url, &tokens, "sandbox", load()).await;
    let cpu1 = procs::cpu_seconds(sandbox.proc.pid()).unwrap_or(0.0);
    lines.push(describe(
        &format!("creditlink sandbox, {CLIENTS} clients, {secs} s"),
        &boxed,
    ));
    let line = format!(
        "- sandbox / run+sim request rate: {:.2} (sandbox CPU {:.0} µs per request; load {})",
        boxed.rate() / run.rate(),
        (cpu1 - cpu0) * 1e6 / boxed.ok.max(1) as f64,
        probes::load_average()
    );
    println!("{line}");
    lines.push(line);
    sandbox.proc.terminate(Duration::from_secs(60)).await?;
    Ok(lines)
}
