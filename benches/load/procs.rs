//! The two real processes a scenario drives: `creditlink sim salesforce` and `creditlink run`, both the
//! release binary cargo built for this bench, both on 127.0.0.1. Each handle kills its child on drop, so a
//! scenario that fails half-way leaves nothing running; temp dirs are removed by their `TempDir` owners.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

/// The binary under test (cargo builds it for benches and names it here).
pub const BIN: &str = env!("CARGO_BIN_EXE_creditlink");

/// The binary the scenarios start: `BENCH_BIN` when set (to compare two builds side by side in one
/// session), else the one Cargo built for this bench.
pub fn bin() -> String {
    std::env::var("BENCH_BIN").unwrap_or_else(|_| BIN.to_string())
}
const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// Polls `probe` every 20 ms until it returns `Some`, or fails after `limit`.
pub async fn poll_until<T, F, Fut>(limit: Duration, what: &str, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return Ok(v);
        }
        if start.elapsed() > limit {
            bail!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// CPU time (user + system) a process has used so far, in seconds; `None` if it is gone.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15 (1-based).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on Linux for every architecture this runs on.
    Some(ticks as f64 / 100.0)
}

/// A child process killed (SIGKILL) on drop unless it already exited.
pub struct Proc {
    child: Child,
}

impl Proc {
    /// Takes ownership of a spawned child (killed on drop).
    pub fn from_child(child: Child) -> Proc {
        Proc { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size in bytes (`VmRSS` of `/proc/<pid>/status`).
    pub fn rss_bytes(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .context("no VmRSS line")?;
        let kb: u64 = line
            .split_whitespace()
            .nth(1)
            .context("VmRSS value")?
            .parse()?;
        Ok(kb * 1024)
    }

    /// SIGTERM, then wait (bounded) for a clean exit; SIGKILL if it does not come.
    pub async fn terminate(mut self, limit: Duration) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()?;
        if !sent.success() {
            bail!("kill -TERM {} failed", self.pid());
        }
        loop {
            if self.child.try_wait()?.is_some() {
                return Ok(start.elapsed());
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!(
                    "process {} did not stop within {limit:?} of SIGTERM",
                    self.pid()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The simulated Salesforce org, with the info file it wrote.
pub struct Sim {
    /// Held so the simulator lives (and is killed) with this handle.
    _proc: Proc,
    pub url: String,
    pub info: Value,
}

impl Sim {
    pub fn pid(&self) -> u32 {
        self._proc.pid()
    }

    pub async fn start(dir: &Path) -> anyhow::Result<Sim> {
        let info_file = dir.join("sim-info.json");
        let log = std::fs::File::create(dir.join("sim.log"))?;
        let child = Command::new(bin())
            .args([
                "sim",
                "salesforce",
                "--listen",
                "127.0.0.1:0",
                "--info-file",
            ])
            .arg(&info_file)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawning the simulator")?;
        let proc = Proc { child };
        let info = json_file_when_written(&info_file, "the simulator's info file", 20).await?;
        let url = info["salesforce_url"]
            .as_str()
            .context("salesforce_url")?
            .to_owned();
        Ok(Sim {
            _proc: proc,
            url,
            info,
        })
    }
}

/// `creditlink sandbox`: the daemon and the simulated org (with its bureau automation, demo banks and mail
/// sink) in one process, as a newcomer runs it.
pub struct Sandbox {
    pub proc: Proc,
    pub url: String,
    /// The `sandbox.json` document (its `banks[].token_request` give the bank tokens).
    pub info: Value,
}

impl Sandbox {
    pub async fn start(dir: &Path) -> anyhow::Result<Sandbox> {
        let data_dir = dir.join("sandbox");
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = std::fs::File::create(dir.join("sandbox.log"))?;
        let child = Command::new(bin())
            .arg("sandbox")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawning the sandbox")?;
        let proc = Proc { child };
        let info_file = data_dir.join("sandbox.json");
        let info = json_file_when_written(&info_file, "the sandbox's sandbox.json", 30).await?;
        let url = info["daemon_url"]
            .as_str()
            .context("daemon_url")?
            .to_owned();
        Ok(Sandbox { proc, url, info })
    }
}

/// The JSON document a child process writes at `path` once it is up (bounded wait).
async fn json_file_when_written(path: &Path, what: &str, secs: u64) -> anyhow::Result<Value> {
    poll_until(Duration::from_secs(secs), what, || {
        let path = path.to_path_buf();
        async move {
            std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
        }
    })
    .await
}

/// What varies between scenarios: `CREDITLINK__SECTION__KEY` overrides.
pub type Overrides = Vec<(&'static str, String)>;

/// `creditlink run` with a generated config on a data dir that outlives restarts.
pub struct Daemon {
    pub proc: Proc,
    pub url: String,
    /// The admin API's own listener (`[admin] listen`).
    pub admin_url: String,
    pub started: Instant,
}

/// The config file, data dir and port a daemon (and its restarts) use.
pub struct DaemonSetup {
    pub config: PathBuf,
    /// `[store] data_dir` (the sled store is its `store/`).
    pub data_dir: PathBuf,
    pub port: u16,
    pub admin_port: u16,
    pub log_dir: PathBuf,
    pub admin_token: String,
}

impl DaemonSetup {
    /// Writes a config like `config/local.toml`, with absolute paths and a free port.
    pub fn new(dir: &Path, sim_url: &str) -> anyhow::Result<DaemonSetup> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let admin_port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let sandbox = Path::new(MANIFEST_DIR).join("config/sandbox");
        let mappings = Path::new(MANIFEST_DIR).join("mappings");
        let data_dir = dir.join("data");
        let text = format!(
            r#"[server]
listen = "127.0.0.1:{port}"

[store]
data_dir = {data_dir:?}

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
private_key = {{ file = {key:?} }}
client_secret = {{ file = {secret:?} }}

[mappings]
dir = {mappings:?}

[admin]
token = {{ file = {admin:?} }}
listen = "127.0.0.1:{admin_port}"

[[banks]]
account_id = "0015Y00000BANKAQA5"
code = "DBA"
name = "Demo Bank A"

[[banks]]
account_id = "0015Y00000BANKBQA5"
code = "DBB"
name = "Demo Bank B"
"#,
            key = sandbox.join("jwt_private_key.pem"),
            secret = sandbox.join("creditlink_client_secret"),
            admin = sandbox.join("admin_token"),
        );
        let config = dir.join("creditlink.toml");
        std::fs::write(&config, text)?;
        let admin_token = std::fs::read_to_string(sandbox.join("admin_token"))?
            .trim()
            .to_owned();
        Ok(DaemonSetup {
            config,
            data_dir,
            port,
            admin_port,
            log_dir: dir.to_path_buf(),
            admin_token,
        })
    }

    /// Starts the daemon and waits (bounded) for `/readyz` 200; `started` is taken just before the spawn.
    pub async fn start(
        &self,
        overrides: &Overrides,
        http: &reqwest::Client,
    ) -> anyhow::Result<Daemon> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_dir.join("daemon.log"))?;
        let mut cmd = Command::new(bin());
        cmd.arg("run").arg("--config").arg(&self.config);
        for (k, v) in overrides {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawning the daemon")?;
        let daemon = Daemon {
            proc: Proc { child },
            url: format!("http://127.0.0.1:{}", self.port),
            admin_url: format!("http://127.0.0.1:{}", self.admin_port),
            started,
        };
        let readyz = format!("{}/readyz", daemon.url);
        poll_until(Duration::from_secs(60), "daemon /readyz 200", || {
            let req = http.get(&readyz).timeout(Duration::from_secs(2)).send();
            async move {
                req.await
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(|_| ())
            }
        })
        .await?;
        Ok(daemon)
    }
}
