//! Nothing acknowledged is lost to `kill -9`.
//!
//! The test re-runs its own binary as a child (selected by `CREDITLINK_CRASH_CHILD`, which names the
//! data dir). The child enqueues from several tasks and prints `ACK <id>` only after `enqueue`
//! returned; the parent SIGKILLs it at a random moment, reopens the store and checks every
//! acknowledged id is there. Three rounds share one data dir, so recovery of a crashed store is
//! itself crashed into.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use creditlink::outbox::{Lane, MessageId};
use rand::RngExt;

use crate::outbox_support::{open, salesforce};

const CHILD_ENV: &str = "CREDITLINK_CRASH_CHILD";
const TEST_NAME: &str = "outbox_crash::kill_9_loses_no_acknowledged_message";

#[test]
fn kill_9_loses_no_acknowledged_message() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        run_child(Path::new(&dir));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut acked: HashSet<MessageId> = HashSet::new();
    for round in 0..3 {
        let new_acks = crash_once(dir.path());
        assert!(
            !new_acks.is_empty(),
            "round {round}: child acknowledged nothing"
        );
        if std::env::var_os("TEST_LOG").is_some() {
            eprintln!(
                "round {round}: {} acknowledged before SIGKILL",
                new_acks.len()
            );
        }
        acked.extend(new_acks);

        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async {
            let outbox = open(dir.path());
            for id in &acked {
                assert!(
                    outbox.get(*id).await.expect("get").is_some(),
                    "round {round}: acknowledged {id} lost"
                );
            }
            assert_eq!(
                outbox.counts().await.expect("counts").in_flight,
                0,
                "recovery released every lease"
            );
        });
    }
}

/// Spawns the child, lets it acknowledge for a random while, kills it; returns its acks.
fn crash_once(dir: &Path) -> Vec<MessageId> {
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let acks = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let acks = acks.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(id) = line.strip_prefix("ACK ").and_then(|s| s.parse().ok()) {
                    acks.lock().expect("acks").push(id);
                }
            }
        })
    };
    // Wait (bounded) until the child is acknowledging, then kill it at a random moment.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acks.lock().expect("acks").is_empty() {
        assert!(Instant::now() < deadline, "child never acknowledged");
        if let Ok(Some(status)) = child.try_wait() {
            panic!("child exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let extra = rand::rng().random_range(10..400);
    std::thread::sleep(Duration::from_millis(extra));
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    reader.join().expect("reader");
    std::mem::take(&mut *acks.lock().expect("acks"))
}

/// The child: enqueue and acknowledge until killed.
fn run_child(dir: &Path) -> ! {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let outbox = open(dir);
        let out = Arc::new(Mutex::new(std::io::stdout()));
        let mut tasks = Vec::new();
        for worker in 0..8u32 {
            let (outbox, out) = (outbox.clone(), out.clone());
            tasks.push(tokio::spawn(async move {
                for n in 0.. {
                    let id = outbox
                        .enqueue(salesforce(
                            "001A",
                            Lane::Interactive,
                            worker * 1_000_000 + n,
                        ))
                        .await
                        .expect("enqueue");
                    let mut out = out.lock().expect("stdout");
                    writeln!(out, "ACK {id}").expect("write");
                    out.flush().expect("flush");
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    std::process::exit(0)
}
