//! The simulator's own benchmark: the simulated org in this process, driven over HTTP on 127.0.0.1 the way
//! creditlink's pusher and poller drive it, at 1,000 and at 1,000,000 stored credit report requests.
//!
//! ```text
//! cargo bench -p creditlink-sim --bench sim                      # 1,000 and 1,000,000 records
//! SIM_BENCH_LARGE=200000 cargo bench -p creditlink-sim --bench sim
//! SIM_BENCH_REPEAT=20 cargo bench -p creditlink-sim --bench sim  # 20× the rounds, e.g. under `perf record`
//! ```
//! Figures (issue targets in brackets):
//! - sObject Collections upsert of 200 new records by External ID: wall time per record with N stored, and the
//!   ratio large / small [≤ 1.5];
//! - CPU per upserted record: the CPU time of the simulator's own threads (`sim-worker`, read from
//!   `/proc/self/task/*/schedstat` in nanoseconds) over the upserts divided by the records [≤ 20 µs]; the
//!   bench's HTTP client runs on the main thread and its CPU is shown beside it;
//! - the reconciliation poller's query `SELECT Id, SystemModstamp … WHERE SystemModstamp > t ORDER BY
//!   SystemModstamp` matching every stored record: time to its first page of 2,000 rows [≤ 20 ms].
//!
//! Stored records are loaded through the seed (no HTTP), then every figure is the median of several rounds.
//! Speed is never asserted; the bench prints figures with the load average and exits 0 unless it could not run.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use creditlink_sim::testkit::{BANK_A, api, client, integration_token};
use creditlink_sim::{Seed, SimHandle, SimOptions};
use serde_json::{Map, Value, json};

const OBJECT: &str = "Credit_Report_Request__c";
const BATCH: usize = 200;
const UPSERT_ROUNDS: usize = 50;
const QUERY_ROUNDS: usize = 15;

/// The allocator and options of the `creditlink` binary (`src/main.rs`), so these figures are the simulator's
/// as `creditlink sim salesforce` and `creditlink sandbox` run it.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &[u8; 60] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

/// The simulator's runtime threads carry this name, so their CPU time is read apart from the client's.
const SIM_THREAD: &str = "sim-worker";

fn main() -> ExitCode {
    // The simulator on its own 2-worker runtime; the bench's HTTP client on a current-thread runtime in the
    // main thread. Per-thread CPU accounting then separates the two.
    let runtimes = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(SIM_THREAD)
        .enable_all()
        .build()
        .and_then(|sim| {
            let client = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            Ok((sim, client))
        });
    let (sim_runtime, client_runtime) = match runtimes {
        Ok(rts) => rts,
        Err(e) => {
            eprintln!("bench: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match client_runtime.block_on(run(sim_runtime.handle())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

struct Figures {
    stored: usize,
    upsert_us_per_record: f64,
    /// CPU of the simulator's threads only.
    cpu_us_per_record: f64,
    /// CPU of everything else in the process (the bench's HTTP client, mostly).
    client_cpu_us_per_record: f64,
    first_page_ms: f64,
}

async fn run(sim_runtime: &tokio::runtime::Handle) -> anyhow::Result<()> {
    let large = std::env::var("SIM_BENCH_LARGE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut all = Vec::new();
    for stored in [1_000, large] {
        all.push(measure(sim_runtime, stored).await?);
    }
    let (small, big) = (&all[0], &all[1]);
    println!("\n## Summary (load average {})\n", load_average());
    println!(
        "| stored records | upsert µs/record (wall) | simulator CPU µs/record | client CPU µs/record | range query first page ms |"
    );
    println!("| --- | --- | --- | --- | --- |");
    for f in &all {
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.2} |",
            f.stored,
            f.upsert_us_per_record,
            f.cpu_us_per_record,
            f.client_cpu_us_per_record,
            f.first_page_ms
        );
    }
    println!(
        "\nupsert time per record, {} vs {} stored: {:.2}x [target ≤ 1.5]; simulator CPU per record at {}: {:.1} µs \
         [target ≤ 20]; first 2,000 rows of the range over {}: {:.2} ms [target ≤ 20]",
        big.stored,
        small.stored,
        big.upsert_us_per_record / small.upsert_us_per_record,
        big.stored,
        big.cpu_us_per_record,
        big.stored,
        big.first_page_ms
    );
    Ok(())
}

async fn measure(sim_runtime: &tokio::runtime::Handle, stored: usize) -> anyhow::Result<Figures> {
    let loading = Instant::now();
    let sim = sim_runtime.spawn(start(stored)).await??;
    println!(
        "{stored} records stored in {:.1} s (load {})",
        loading.elapsed().as_secs_f64(),
        load_average()
    );
    let http = client();
    let token = integration_token(&sim).await;
    let url = api(
        &sim,
        &format!("/composite/sobjects/{OBJECT}/Request_Key__c"),
    );
    // Warm-up: connections, allocator, caches.
    for round in 0..3 {
        upsert(&http, &url, &token, &format!("warm-{round}")).await?;
    }
    let mut walls = Vec::new();
    let upsert_rounds = UPSERT_ROUNDS * repeat();
    let (sim_cpu_before, client_cpu_before) = threads_cpu(SIM_THREAD);
    let started = Instant::now();
    for round in 0..upsert_rounds {
        let t = Instant::now();
        upsert(&http, &url, &token, &format!("round-{round}")).await?;
        walls.push(t.elapsed());
    }
    let elapsed = started.elapsed();
    let (sim_cpu_after, client_cpu_after) = threads_cpu(SIM_THREAD);
    let sim_cpu = sim_cpu_after.saturating_sub(sim_cpu_before);
    let client_cpu = client_cpu_after.saturating_sub(client_cpu_before);
    let records = (upsert_rounds * BATCH) as f64;
    let upsert_us = median(&mut walls).as_secs_f64() * 1e6 / BATCH as f64;
    let cpu_us = sim_cpu.as_secs_f64() * 1e6 / records;
    let client_cpu_us = client_cpu.as_secs_f64() * 1e6 / records;
    println!(
        "{stored} stored: collections upsert of {BATCH}: median {upsert_us:.1} µs/record wall, {cpu_us:.1} µs \
         simulator CPU/record, {client_cpu_us:.1} µs client CPU/record ({records} records in {:.2} s) (load {})",
        elapsed.as_secs_f64(),
        load_average()
    );
    let soql = format!(
        "SELECT Id, SystemModstamp FROM {OBJECT} WHERE SystemModstamp > 2000-01-01T00:00:00Z ORDER BY SystemModstamp"
    );
    let query_url = api(&sim, "/query");
    let mut times = Vec::new();
    let mut total = 0;
    for _ in 0..QUERY_ROUNDS * repeat() {
        let t = Instant::now();
        let body: Value = http
            .get(&query_url)
            .query(&[("q", soql.as_str())])
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        times.push(t.elapsed());
        total = body["totalSize"].as_u64().unwrap_or_default();
        anyhow::ensure!(
            body["records"].as_array().map(Vec::len) == Some(2000.min(total as usize)),
            "unexpected first page: {}",
            body["records"].as_array().map(Vec::len).unwrap_or_default()
        );
    }
    let first_page_ms = median(&mut times).as_secs_f64() * 1e3;
    println!(
        "{stored} stored: range query over {total} rows, first page of 2,000: median {first_page_ms:.2} ms (load {})",
        load_average()
    );
    sim.shutdown().await?;
    Ok(Figures {
        stored,
        upsert_us_per_record: upsert_us,
        cpu_us_per_record: cpu_us,
        client_cpu_us_per_record: client_cpu_us,
        first_page_ms,
    })
}

/// A simulator whose org holds `stored` credit report requests (loaded through the seed).
async fn start(stored: usize) -> anyhow::Result<SimHandle> {
    let mut seed = Seed::default_org();
    let records = (0..stored)
        .map(|i| request(&format!("stored-{i:08}")))
        .collect();
    seed.records.insert(OBJECT.to_owned(), records);
    let opts = SimOptions {
        seed,
        daily_api_limit: 1_000_000,
        ..SimOptions::default()
    };
    creditlink_sim::spawn("127.0.0.1:0".parse()?, opts).await
}

/// One collections upsert of `BATCH` new records; every record must succeed.
async fn upsert(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    prefix: &str,
) -> anyhow::Result<()> {
    let records: Vec<Value> = (0..BATCH)
        .map(|i| {
            let mut r = request(&format!("{prefix}-{i:04}"));
            r.insert("attributes".into(), json!({ "type": OBJECT }));
            Value::Object(r)
        })
        .collect();
    let answer: Value = http
        .patch(url)
        .bearer_auth(token)
        .json(&json!({ "allOrNone": false, "records": records }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let ok = answer
        .as_array()
        .map(|rs| rs.iter().filter(|r| r["success"] == true).count());
    anyhow::ensure!(ok == Some(BATCH), "upsert failed: {answer}");
    Ok(())
}

fn request(key: &str) -> Map<String, Value> {
    match json!({
        "Request_Key__c": key,
        "Bank__c": BANK_A,
        "Subject_Type__c": "Person",
        "Purpose__c": "Loan Application",
        "Last_Name__c": "Bench",
        "National_Id__c": "8001011234",
    }) {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// CPU time so far of this process's live threads named `name`, and of all its other threads
/// (`/proc/self/task/*/schedstat`: the first field is the time the thread ran, in nanoseconds).
fn threads_cpu(name: &str) -> (Duration, Duration) {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return (Duration::ZERO, Duration::ZERO);
    };
    let (mut named, mut others) = (Duration::ZERO, Duration::ZERO);
    for task in tasks.filter_map(Result::ok) {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let ran = std::fs::read_to_string(task.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .map(Duration::from_nanos)
            .unwrap_or_default();
        if comm.trim_end() == name {
            named += ran;
        } else {
            others += ran;
        }
    }
    (named, others)
}

/// `SIM_BENCH_REPEAT`: how many times the usual number of rounds to run (for profiling), 1 by default.
fn repeat() -> usize {
    std::env::var("SIM_BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
