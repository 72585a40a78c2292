//! A private PostgreSQL cluster for the tests of one run: `initdb` + `pg_ctl` in a temp dir, listening
//! only on a Unix socket inside it (no TCP), one database per test. Started on first use; a watchdog
//! process stops it (`pg_ctl stop -m immediate`) and removes the dir once this test process has exited.
//!
//! initdb refuses to run as root, so as root the cluster runs as the `creditlink-test` system user
//! (created here when missing; `.ci/run` creates it too). Server binaries are looked up in `PG_BIN`,
//! then `/usr/lib/postgresql/<newest>/bin`. When they are missing the postgres tests print a loud
//! SKIPPED line and pass — except under `CI=true`, where they fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use secrecy::SecretString;

/// The system user the cluster runs as when the tests run as root.
const PG_USER: &str = "creditlink-test";

/// A running cluster.
pub struct PgCluster {
    socket_dir: PathBuf,
    next_db: AtomicU32,
}

impl PgCluster {
    /// A connection string for database `db` of this cluster (libpq key/value form).
    pub fn url_for(&self, db: &str) -> SecretString {
        SecretString::from(format!(
            "host={} user=postgres dbname={db}",
            self.socket_dir.display()
        ))
    }

    /// Creates a fresh, empty database and returns its connection string.
    pub async fn fresh_database(&self) -> SecretString {
        let n = self.next_db.fetch_add(1, Ordering::Relaxed);
        let name = format!("t{}_{n}", std::process::id());
        let (client, conn) = tokio_postgres::connect(
            &format!(
                "host={} user=postgres dbname=postgres",
                self.socket_dir.display()
            ),
            tokio_postgres::NoTls,
        )
        .await
        .expect("connect to the test cluster");
        let task = tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create database");
        drop(client);
        let _ = task.await;
        self.url_for(&name)
    }
}

/// The run's cluster, or `None` (after a loud notice) when PostgreSQL is not installed. Panics
/// under `CI=true` when it is missing, and whenever it is installed but fails to start.
pub fn cluster(test: &str) -> Option<&'static PgCluster> {
    static CLUSTER: OnceLock<Option<PgCluster>> = OnceLock::new();
    let cluster = CLUSTER.get_or_init(start).as_ref();
    if cluster.is_none() {
        crate::skips::skip(
            test,
            "PostgreSQL server binaries (PG_BIN or /usr/lib/postgresql/*/bin)",
            "apt-get install postgresql-15; .ci/run does",
        );
    }
    cluster
}

fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        let dir = PathBuf::from(dir);
        return dir.join("initdb").exists().then_some(dir);
    }
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, dir)| dir)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// `program args…`, as the cluster's user.
fn as_pg_user(root: bool, program: &Path) -> Command {
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", PG_USER, "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(mut command: Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn start() -> Option<PgCluster> {
    let bin = bin_dir()?;
    let root = is_root();
    if root
        && !Command::new("id")
            .arg(PG_USER)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    {
        let mut add = Command::new("useradd");
        add.args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            PG_USER,
        ]);
        run(add, "useradd creditlink-test");
    }
    let dir = tempfile::Builder::new()
        .prefix("creditlink-pg-")
        .tempdir()
        .expect("temp dir")
        .keep();
    let data = dir.join("data");
    let socket_dir = dir.join("sock");
    std::fs::create_dir(&socket_dir).expect("socket dir");
    if root {
        let mut chown = Command::new("chown");
        chown.args(["-R", PG_USER]).arg(&dir);
        run(chown, "chown the cluster dir");
    }
    let mut initdb = as_pg_user(root, &bin.join("initdb"));
    initdb.args(["-D"]).arg(&data).args([
        "-U",
        "postgres",
        "-A",
        "trust",
        "--no-sync",
        "-E",
        "UTF8",
    ]);
    run(initdb, "initdb");
    let options = format!(
        "-k {} -c listen_addresses='' -c max_connections=200 -c shared_buffers=64MB",
        socket_dir.display()
    );
    let mut pg_ctl = as_pg_user(root, &bin.join("pg_ctl"));
    pg_ctl
        .arg("-D")
        .arg(&data)
        .args(["-o", &options, "-l"])
        .arg(dir.join("server.log"))
        .args(["-w", "start"]);
    run(pg_ctl, "pg_ctl start");
    // Stops the cluster and removes its dir once this process is gone (statics are never dropped).
    let stop = if root {
        format!("runuser -u {PG_USER} -- ")
    } else {
        String::new()
    };
    let script = format!(
        "while [ -d /proc/{pid} ]; do sleep 1; done; {stop}'{pg_ctl}' -D '{data}' -m immediate stop; rm -rf '{dir}'",
        pid = std::process::id(),
        pg_ctl = bin.join("pg_ctl").display(),
        data = data.display(),
        dir = dir.display(),
    );
    // Deliberately never waited on: it must outlive this process to stop the cluster after it.
    let watchdog = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the cluster's watchdog");
    std::mem::forget(watchdog);
    Some(PgCluster {
        socket_dir,
        next_db: AtomicU32::new(0),
    })
}
