//! Real `creditlink` processes for the end-to-end tests: the simulated org (`sim salesforce`) and the
//! daemon (`run --config`), with their output in files of the test's temp dir, signals, and bounded
//! waits for start-up and exit.
//!
//! Output goes to files (appended across restarts) so a failure can be diagnosed; under `TEST_LOG=1` the
//! files are echoed when the process handle is dropped.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::e2e_support::{http, log, poll_until, verbose};

const BIN: &str = env!("CARGO_BIN_EXE_creditlink");
const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// One child process with its output in `<dir>/<name>.log`.
pub struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Starts `creditlink <args>`; output is appended to `<dir>/<name>.log`.
    pub fn spawn(name: &str, dir: &Path, args: &[&str]) -> Proc {
        let log_path = dir.join(format!("{name}.log"));
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("log file");
        let err = out.try_clone().expect("log file handle");
        let child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {name}: {e}"));
        log(format!("{name}: started pid {}", child.id()));
        Proc {
            name: name.to_owned(),
            child,
            log: log_path,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then reap it (so its port and store lock are free).
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        log(format!("{}: SIGKILLed", self.name));
    }

    /// Sends a signal by name (`TERM`, `HUP`) with kill(1): std has no portable signal API.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill(1) runs");
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }

    /// The exit status if the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Waits (bounded) for the process to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let what = format!("{} to exit", self.name);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}",
                self.tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last lines of the process's output, for assertion messages.
    pub fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(40);
        format!(
            "--- last lines of {} ---\n{}",
            self.log.display(),
            lines[from..].join("\n")
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if verbose() {
            eprintln!("{}", self.tail());
        }
    }
}

/// `creditlink sim salesforce` on a free port, and the info document it wrote.
pub struct SimProcess {
    /// Held so the simulator lives (and is killed) with this handle.
    _proc: Proc,
    pub info: Value,
    pub url: String,
}

impl SimProcess {
    pub async fn start(dir: &Path) -> SimProcess {
        let info_file = dir.join("sim.json");
        let info_arg = info_file.to_string_lossy().into_owned();
        let mut proc = Proc::spawn(
            "sim",
            dir,
            &[
                "sim",
                "salesforce",
                "--listen",
                "127.0.0.1:0",
                "--info-file",
                &info_arg,
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let info: Value = loop {
            if let Some(info) = std::fs::read(&info_file)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
            {
                break info;
            }
            assert!(
                proc.exited().is_none(),
                "the simulator exited\n{}",
                proc.tail()
            );
            assert!(
                Instant::now() < deadline,
                "no info file from the simulator\n{}",
                proc.tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let url = info["salesforce_url"]
            .as_str()
            .expect("salesforce_url")
            .to_owned();
        SimProcess {
            _proc: proc,
            info,
            url,
        }
    }

    /// Every stored record of `object`, from `GET /__sim/records/{object}`.
    pub async fn records(&self, object: &str) -> Vec<serde_json::Map<String, Value>> {
        http()
            .get(format!("{}/__sim/records/{object}", self.url))
            .send()
            .await
            .expect("sim records")
            .json()
            .await
            .expect("records JSON")
    }
}

/// A port that was free a moment ago (the daemon must be restarted on the same one).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Writes a daemon config shaped like `config/local.toml`, with absolute paths: the demo secrets of
/// `config/sandbox/`, the store in `data_dir`, mappings from `mappings_dir`, and short retries.
pub fn write_config(
    dir: &Path,
    sim_url: &str,
    port: u16,
    data_dir: &Path,
    mappings_dir: &Path,
) -> PathBuf {
    let secret = |name: &str| format!("{{ file = {:?} }}", format!("{REPO}/config/sandbox/{name}"));
    let text = format!(
        r#"[server]
listen = "127.0.0.1:{port}"
shutdown_grace_ms = 5000

[store]
data_dir = {data_dir:?}

[telemetry]
format = "pretty"
level = "info"

[salesforce]
login_url = "{sim_url}"
org_id = "00D5Y000001CLNKUA4"
integration_username = "creditlink-integration@bureau.sim"
timeout_ms = 5000

[salesforce.auth]
flow = "jwt_bearer"
consumer_key = "3MVG9creditlink.sandbox.consumer"
username = "creditlink-integration@bureau.sim"
audience = "https://login.salesforce.com"
private_key = {key}
client_secret = {client_secret}

[outbox]
retry_schedule_ms = [0, 100, 200, 500, 1000]
rate_limit_floor_ms = 200
lease_ms = 10000

[mappings]
dir = {mappings_dir:?}

[admin]
token = {admin}
listen = "127.0.0.1:0"

[[banks]]
account_id = "0015Y00000BANKAQA5"
code = "DBA"
name = "Demo Bank A"

[[banks]]
account_id = "0015Y00000BANKBQA5"
code = "DBB"
name = "Demo Bank B"
"#,
        key = secret("jwt_private_key.pem"),
        client_secret = secret("creditlink_client_secret"),
        admin = secret("admin_token"),
    );
    let path = dir.join("creditlink.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// The repository's shipped mappings.
pub fn repo_mappings() -> PathBuf {
    Path::new(REPO).join("mappings")
}

/// `creditlink run --config <file>`, restartable on the same port and data dir.
pub struct DaemonProcess {
    pub proc: Proc,
    pub url: String,
    config: PathBuf,
    dir: PathBuf,
}

impl DaemonProcess {
    /// Starts the daemon and waits until `/readyz` answers 200.
    pub async fn start(dir: &Path, config: &Path, port: u16) -> DaemonProcess {
        let proc = Self::spawn(dir, config);
        let mut daemon = DaemonProcess {
            proc,
            url: format!("http://127.0.0.1:{port}"),
            config: config.into(),
            dir: dir.into(),
        };
        daemon.wait_ready().await;
        daemon
    }

    fn spawn(dir: &Path, config: &Path) -> Proc {
        let config = config.to_string_lossy().into_owned();
        Proc::spawn("daemon", dir, &["run", "--config", &config])
    }

    /// SIGTERM; asserts the drain ends with exit code 0 within `[server] shutdown_grace_ms` plus a margin.
    pub async fn terminate(&mut self) {
        self.proc.signal("TERM");
        let status = self.proc.wait_exit(Duration::from_secs(30)).await;
        assert_eq!(
            status.code(),
            Some(0),
            "SIGTERM exit status\n{}",
            self.proc.tail()
        );
    }

    /// Starts a stopped daemon again on the same port and data dir and waits for readiness.
    pub async fn restart(&mut self) {
        self.proc = Self::spawn(&self.dir, &self.config);
        self.wait_ready().await;
    }

    /// Bounded wait for `/readyz` 200; fails early with the log when the process exits.
    pub async fn wait_ready(&mut self) {
        let client = http();
        let url = format!("{}/readyz", self.url);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.proc.exited() {
                panic!(
                    "the daemon exited with {status} before it was ready\n{}",
                    self.proc.tail()
                );
            }
            if let Ok(resp) = client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                && resp.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon was not ready within 30 s\n{}",
                self.proc.tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `GET /metrics` as text.
    pub async fn metrics(&self) -> String {
        poll_until("/metrics", Duration::from_secs(10), || async {
            http()
                .get(format!("{}/metrics", self.url))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()
        })
        .await
    }
}
