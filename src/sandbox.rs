//! `creditlink sandbox`: the daemon wired to an in-process simulated Salesforce org, on one machine.
//!
//! **A data dir is one whole sandbox world**: the daemon's store (messages, idempotency keys, report vault)
//! *and* the simulated org's records (`<data-dir>/org.json`, saved when the sandbox stops). A second run on
//! the same data dir therefore continues where the first stopped: an idempotency key replayed within its
//! 24 hours answers with a Salesforce id the org still has. A store without its org (the last sandbox was
//! killed before it could save) is refused with what to do, rather than mixing a fresh org with old keys.
//!
//! Start-up order: the data dir's lock (`sandbox.lock`) is taken before anything is written, so a second
//! sandbox on a busy dir stops with "another creditlink is using <dir>; pass --data-dir" and leaves the
//! running one's files alone. The generated config is loaded from a private temporary file and becomes
//! `<data-dir>/sandbox.toml` only once the daemon holds its store. Every secret in it is an `{ env = .. }`
//! reference resolved from an in-process environment map, so no secret is in the config: the demo JWT key is
//! compiled in (it is public, `config/sandbox/README.md`), the admin token is fresh per run and is written to
//! `<data-dir>/sandbox.json` (mode 0600) for scripts and `creditlink outbox --sandbox <dir>`.
//!
//! Ports: the daemon listens on 127.0.0.1:8080 and its companions on the next ports (org 8081, bank
//! receivers 8082, mail sink 8083, admin API 8084), so commands copied from an earlier run keep working. A taken port falls
//! back to a free one, with a line saying so (and `sandbox.json` has the real URLs).
//!
//! Tests use [`Sandbox::start`] directly (with port 0 everywhere) to get a whole running loop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rand::RngExt;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::Daemon;
use crate::bank::WebhookSecret;
use crate::config::{self, Env};
use crate::outbox::Outbox;
use crate::sim::banks::spawn_bank_receivers_with_mail;
use crate::sim::smtp::spawn_smtp_sink;
use crate::sim::{self, SimHandle, SimOptions};

/// The demo JWT key of `config/sandbox/` (public; accepted only by the simulator).
const DEMO_JWT_KEY: &str = include_str!("../config/sandbox/jwt_private_key.pem");
const DEMO_CLIENT_SECRET: &str = "demo-creditlink-secret";
/// creditlink's connected app in the demo org (JWT bearer for the daemon, web server flow for the dashboard).
const SANDBOX_CONSUMER_KEY: &str = "3MVG9creditlink.sandbox.consumer";
/// Path names of the demo banks' webhook receivers, in `[[banks]]` order.
const BANK_SLUGS: [&str; 2] = ["demo-bank-a", "demo-bank-b"];
/// Codes and names of the demo banks, in `[[banks]]` order (their widget demo pages).
const DEMO_BANKS: [(&str, &str); 2] = [("DBA", "Demo Bank A"), ("DBB", "Demo Bank B")];

/// What to start.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    pub data_dir: PathBuf,
    /// The daemon's address (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    pub sim: SimOptions,
    /// Extra `CREDITLINK__SECTION__KEY` overrides applied to the generated config (tests shorten retries).
    pub overrides: Vec<(String, String)>,
    /// Let the simulated bureau complete or reject requests and push Outbound Messages to the daemon.
    pub automate: bool,
    /// When a companion's fixed port (next to the daemon's) is taken, use a free one and say so.
    pub fallback_ports: bool,
    /// Likewise for the daemon's own port (only when it was not chosen explicitly).
    pub daemon_fallback: bool,
    /// Seed a fresh org with a few old `Credit_Record__c` rows (stale, about to be, in dispute, closed), so the
    /// walk-through's gatekeeper run has something to warn about and terminate.
    pub demo_records: bool,
}

impl SandboxOptions {
    pub fn new(data_dir: PathBuf, listen: SocketAddr) -> Self {
        SandboxOptions {
            data_dir,
            listen,
            sim: SimOptions::default(),
            overrides: Vec::new(),
            automate: true,
            fallback_ports: false,
            daemon_fallback: false,
            demo_records: false,
        }
    }
}

/// The file whose lock says "a sandbox is using this data dir".
const LOCK_FILE: &str = "sandbox.lock";
/// The simulated org's records, saved when the sandbox stops.
const ORG_FILE: &str = "org.json";

/// A running sandbox: the simulated org and the daemon.
pub struct Sandbox {
    pub daemon_url: String,
    /// The admin API's own listener (loopback, ephemeral port).
    pub admin_url: String,
    pub sim: SimHandle,
    /// The `sandbox.json` document.
    pub info: Value,
    pub admin_token: String,
    pub outbox: Outbox,
    /// The bureau automation this sandbox set on its org (tests change and re-apply it).
    pub automation: sim::AutomationOptions,
    shutdown: CancellationToken,
    daemon: JoinHandle<anyhow::Result<()>>,
    /// Stops the bank receivers and the SMTP sink.
    helpers: CancellationToken,
    /// Lines about ports that were taken and replaced (printed before the walk-through).
    pub notes: Vec<String>,
    pub data_dir: PathBuf,
    /// Held while the sandbox runs; released when it is dropped.
    _lock: std::fs::File,
}

impl Sandbox {
    /// Starts the simulated org, then the daemon against it; returns once the daemon is listening.
    pub async fn start(opts: SandboxOptions) -> anyhow::Result<Sandbox> {
        let lock = lock_data_dir(&opts.data_dir)?;
        let store_dir = opts.data_dir.join("store");
        let org_file = opts.data_dir.join(ORG_FILE);
        if store_dir.exists() && !org_file.exists() {
            anyhow::bail!(
                "{} holds a creditlink store but no simulated org ({ORG_FILE}): the last sandbox was stopped \
                 before it could save the org. Delete the directory to start afresh, or pass another --data-dir",
                opts.data_dir.display()
            );
        }
        let mut sim_opts = opts.sim.clone();
        if opts.demo_records {
            sim_opts
                .seed
                .records
                .entry(crate::records::fields::OBJECT.to_owned())
                .or_default()
                .extend(demo_credit_records(chrono::Utc::now().date_naive()));
        }
        sim_opts.snapshot.get_or_insert(org_file);
        let mut notes = Vec::new();
        let near = |offset: u16| companion(opts.listen, offset);
        // The daemon's port first: the companions' ports are next to it.
        let listener = bind_daemon(opts.listen, opts.daemon_fallback, &mut notes).await?;
        let daemon_url = format!("http://{}", listener.local_addr()?);
        register_dashboard_callback(&mut sim_opts.seed, &daemon_url);
        let sim_addr = free_or_fallback(near(1), "simulated org", opts.fallback_ports, &mut notes);
        let sim = sim::spawn(sim_addr, sim_opts).await?;
        // The demo banks' webhook receivers (verifying signatures) and a local SMTP sink for notifications.
        let helpers = CancellationToken::new();
        let secrets: Vec<(String, WebhookSecret)> = BANK_SLUGS
            .iter()
            .map(|slug| (slug.to_string(), WebhookSecret::generate()))
            .collect();
        let smtp_addr = free_or_fallback(near(3), "mail sink", opts.fallback_ports, &mut notes);
        let mail = spawn_smtp_sink(smtp_addr, helpers.clone()).await?;
        let smtp_port = mail.addr.port();
        let receivers_addr =
            free_or_fallback(near(2), "bank receivers", opts.fallback_ports, &mut notes);
        let receivers = spawn_bank_receivers_with_mail(
            receivers_addr,
            secrets.clone(),
            Some(mail),
            helpers.clone(),
        )
        .await?;
        // The admin API has its own listener (never the bank listener), next to the others.
        let admin_addr = free_or_fallback(near(4), "admin API", opts.fallback_ports, &mut notes);
        let admin_listener = TcpListener::bind(admin_addr)
            .await
            .with_context(|| format!("binding the admin API to {admin_addr}"))?;
        let admin_url = format!("http://{}", admin_listener.local_addr()?);
        let admin_token = random_hex();
        let listener_secret = random_hex();
        // Loaded from a private file; it becomes sandbox.toml once the daemon holds the store.
        let config_path = opts.data_dir.join("sandbox.toml");
        let pending_config = opts
            .data_dir
            .join(format!(".sandbox.toml.{}", std::process::id()));
        std::fs::write(
            &pending_config,
            config_text(
                sim.base_url(),
                &daemon_url,
                &opts.data_dir,
                &asset_dir("mappings"),
                &asset_dir("config/sandbox/vault_keys"),
            ),
        )?;
        let mut env: Vec<(String, String)> = vec![
            ("CREDITLINK_SANDBOX_JWT_KEY".into(), DEMO_JWT_KEY.into()),
            (
                "CREDITLINK_SANDBOX_CLIENT_SECRET".into(),
                DEMO_CLIENT_SECRET.into(),
            ),
            ("CREDITLINK_SANDBOX_ADMIN_TOKEN".into(), admin_token.clone()),
            (
                "CREDITLINK_SANDBOX_LISTENER_SECRET".into(),
                listener_secret.clone(),
            ),
        ];
        for (i, (slug, secret)) in secrets.iter().enumerate() {
            env.push((
                format!("CREDITLINK__BANKS__{i}__WEBHOOK_URL"),
                receivers.url_for(slug).to_string(),
            ));
            env.push((
                format!("CREDITLINK_SANDBOX_WEBHOOK_SECRET_{i}"),
                secret.expose_whsec().to_string(),
            ));
        }
        // The demo intranet pages (widget demo) are served by the receivers: their origin may embed the widget.
        let receivers_origin = receivers.base_url.origin().ascii_serialization();
        for i in 0..BANK_SLUGS.len() {
            env.push((
                format!("CREDITLINK__BANKS__{i}__ALLOWED_ORIGINS"),
                format!("[\"{receivers_origin}\"]"),
            ));
        }
        env.push((
            "CREDITLINK__NOTIFICATIONS__SMTP_PORT".into(),
            smtp_port.to_string(),
        ));
        env.extend(opts.overrides.iter().cloned());
        let env: Env = env.into_iter().collect();
        let built = match config::load(&pending_config, &env) {
            Ok(config) => Daemon::build(config).await,
            Err(e) => Err(anyhow::anyhow!("sandbox config:\n{e}")),
        };
        let daemon = match built {
            Ok(daemon) => daemon,
            Err(e) => {
                let _ = std::fs::remove_file(&pending_config);
                return Err(e);
            }
        };
        std::fs::rename(&pending_config, &config_path)?;
        let outbox = daemon.outbox().clone();
        let shutdown = CancellationToken::new();
        let listeners = crate::app::Listeners {
            api: listener,
            admin: admin_listener,
        };
        let task = tokio::spawn(daemon.run_with(listeners, shutdown.clone()));
        // The simulated bureau works each new request and pushes Outbound Messages to the daemon's listener.
        let mut automation = opts.sim.automation.clone();
        if opts.automate {
            automation.enabled = true;
            automation.outbound = Some(sim::OutboundOptions::new(format!(
                "{daemon_url}{}/{listener_secret}",
                crate::inbound::LISTENER_PATH
            )));
            sim.set_automation(automation.clone());
        }

        let mut info = sim.info();
        info["daemon_url"] = json!(daemon_url);
        info["admin_url"] = json!(admin_url);
        if let Some(banks) = info["banks"].as_array_mut() {
            for ((bank, slug), (code, name)) in banks.iter_mut().zip(BANK_SLUGS).zip(DEMO_BANKS) {
                bank["webhook_url"] = json!(receivers.url_for(slug).to_string());
                let page = crate::ui::widget_demo_page(&daemon_url, code, name, chrono::Utc::now());
                bank["widget_demo_url"] = json!(receivers.set_page(slug, page).to_string());
            }
        }
        info["mail_url"] = json!(format!("{}mail", receivers.base_url));
        info["admin"] = json!({ "url": format!("{admin_url}/admin/v1"), "token": admin_token });
        info["data_dir"] = json!(std::fs::canonicalize(&opts.data_dir)?.display().to_string());
        info["ui_users"] = ui_users(&opts.sim.seed);
        write_private(
            &opts.data_dir.join(INFO_FILE),
            &serde_json::to_vec_pretty(&info)?,
        )?;
        Ok(Sandbox {
            daemon_url,
            admin_url,
            sim,
            info,
            admin_token,
            outbox,
            shutdown,
            daemon: task,
            helpers,
            automation,
            notes,
            data_dir: opts.data_dir,
            _lock: lock,
        })
    }

    /// Stops the daemon (draining as on SIGTERM) and the simulated org.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.daemon.await??;
        self.helpers.cancel();
        self.sim.shutdown().await
    }

    /// A bearer token for one of the demo banks' users (index into `banks`).
    pub async fn bank_token(&self, bank: usize) -> anyhow::Result<String> {
        let req = &self.info["banks"][bank]["token_request"];
        let url = req["url"].as_str().context("token url")?;
        let form: Vec<(String, String)> = req["form"]
            .as_object()
            .context("token form")?
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        let body: Value = reqwest::Client::new()
            .post(url)
            .form(&form)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(body["access_token"]
            .as_str()
            .context("access_token")?
            .to_owned())
    }
}

/// The bureau admins of the sandbox's dashboard (`[ui] admin_usernames`).
const UI_ADMINS: [&str; 1] = ["analyst@bureau.sim"];

/// The dashboard logs in through creditlink's connected app: its callback URL must name this daemon's real
/// address (the port may have fallen back), exactly, as Salesforce compares it.
fn register_dashboard_callback(seed: &mut sim::Seed, daemon_url: &str) {
    let callback = format!("{daemon_url}/ui/callback");
    for app in &mut seed.connected_apps {
        if app.consumer_key == SANDBOX_CONSUMER_KEY && !app.callback_urls.contains(&callback) {
            app.callback_urls.push(callback.clone());
        }
    }
}

/// `sandbox.json`'s `ui_users`: the demo people who can log in to the dashboard (every seed user with a
/// password: bank reps by their `AccountId`, bureau admins by `[ui] admin_usernames`).
fn ui_users(seed: &sim::Seed) -> Value {
    let users: Vec<Value> = seed
        .users
        .iter()
        .filter_map(|u| {
            let password = u.password.as_deref()?;
            if UI_ADMINS.contains(&u.username.as_str()) {
                return Some(
                    json!({"username": u.username, "password": password, "role": "admin"}),
                );
            }
            let bank = u.account_id.as_deref()?;
            Some(
                json!({"username": u.username, "password": password, "bank": bank, "role": "bank"}),
            )
        })
        .collect();
    Value::Array(users)
}

/// The daemon's default address; the companions take the next ports.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);
/// The info file for scripts, in the data dir (named in `cli`, which reads it even without the `sim` feature).
pub use crate::cli::SANDBOX_INFO_FILE as INFO_FILE;

/// `creditlink sandbox`: start, print the walk-through, run until `shutdown`.
pub async fn run(
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let data_dir = data_dir.unwrap_or_else(|| PathBuf::from("creditlink-sandbox"));
    let mut opts = SandboxOptions::new(data_dir, listen.unwrap_or(DEFAULT_LISTEN));
    opts.fallback_ports = true;
    opts.daemon_fallback = listen.is_none();
    opts.demo_records = true;
    let sandbox = Sandbox::start(opts).await?;
    for note in &sandbox.notes {
        println!("note: {note}");
    }
    println!("{}", walkthrough_text(&sandbox));
    shutdown.cancelled().await;
    sandbox.stop().await
}

/// Credit records of the demo banks as of `today`: Demo Bank A's stale one, one a week from stale (warned
/// about), a fresh one and a stale one in dispute; Demo Bank B's stale but closed one. Record keys are derived
/// like every other (the account numbers are made up).
fn demo_credit_records(today: chrono::NaiveDate) -> Vec<serde_json::Map<String, Value>> {
    const A: &str = "0015Y00000BANKAQA5";
    const B: &str = "0015Y00000BANKBQA5";
    let rows: [(&str, &str, &str, u64, &str, bool); 5] = [
        (A, "Installment", "DEMO-0001", 200, "Active", false),
        (A, "Revolving", "DEMO-0002", 173, "Active", false),
        (A, "Mortgage", "DEMO-0003", 10, "Active", false),
        (A, "Installment", "DEMO-0004", 400, "Active", true),
        (B, "Open", "DEMO-0005", 300, "Closed", false),
    ];
    rows.iter()
        .map(|(furnisher, product, account, days, status, dispute)| {
            let last = today - chrono::Days::new(*days);
            let record = json!({
                "Record_Key__c": crate::records::record_key(furnisher, product, account),
                "Furnisher__c": furnisher,
                "Subject_Type__c": "Person",
                "Account_Number__c": account,
                "Product_Type__c": product,
                "Status__c": status,
                "Last_Reported__c": last.to_string(),
                "In_Dispute__c": dispute,
            });
            record.as_object().cloned().unwrap_or_default()
        })
        .collect()
}

/// Takes `<dir>/sandbox.lock` (creating the dir), or says who has it.
fn lock_data_dir(dir: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another creditlink is using {}; stop it or pass --data-dir",
            dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// The port `offset` above the daemon's (port 0 stays 0: tests want free ports everywhere).
fn companion(daemon: SocketAddr, offset: u16) -> SocketAddr {
    match daemon.port() {
        0 => SocketAddr::new(daemon.ip(), 0),
        port => SocketAddr::new(daemon.ip(), port.saturating_add(offset)),
    }
}

/// `addr` when it can be bound now; otherwise, with `fallback`, a free port and a note saying so (the
/// companion then fails to bind with its own error if someone takes the port in between).
fn free_or_fallback(
    addr: SocketAddr,
    what: &str,
    fallback: bool,
    notes: &mut Vec<String>,
) -> SocketAddr {
    if addr.port() == 0 || !fallback || std::net::TcpListener::bind(addr).is_ok() {
        return addr;
    }
    notes.push(format!(
        "{addr} is taken: the {what} got a free port this time (sandbox.json has its URL)"
    ));
    SocketAddr::new(addr.ip(), 0)
}

async fn bind_daemon(
    addr: SocketAddr,
    fallback: bool,
    notes: &mut Vec<String>,
) -> anyhow::Result<TcpListener> {
    match TcpListener::bind(addr).await {
        Ok(listener) => Ok(listener),
        Err(e) if fallback && e.kind() == std::io::ErrorKind::AddrInUse => {
            let listener = TcpListener::bind(SocketAddr::new(addr.ip(), 0)).await?;
            notes.push(format!(
                "{addr} is taken, so the daemon listens on {} this time (pass --listen to choose)",
                listener.local_addr()?
            ));
            Ok(listener)
        }
        Err(e) => Err(e)
            .with_context(|| format!("cannot listen on {addr}; pass --listen with a free address")),
    }
}

/// Writes `bytes` to `path` atomically, readable by the owner only (it holds the admin token).
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(true).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// One step of the printed walk-through: what it shows, and the bash command (curl and sed only).
#[derive(Debug, Clone)]
pub struct Step {
    pub says: String,
    pub command: String,
}

/// The walk-through's steps for this sandbox. Run in order in one bash, they post a request under a fresh
/// `Idempotency-Key`, replay it, wait until the bureau worked it, and download the report; the end-to-end
/// test runs exactly these commands.
pub fn walkthrough(s: &Sandbox) -> Vec<Step> {
    let info = &s.info;
    let bank = &info["banks"][0];
    let req = &bank["token_request"];
    let form: Vec<String> = req["form"]
        .as_object()
        .map(|f| {
            f.iter()
                .map(|(k, v)| format!("-d {k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let d = &s.daemon_url;
    let sf = s.sim.base_url();
    let hooks = bank["webhook_url"].as_str().unwrap_or_default();
    let mail = info["mail_url"].as_str().unwrap_or_default();
    let token_url = req["url"].as_str().unwrap_or_default();
    let form = form.join(" ");
    let body = r#"{"reference":"LN-2026-000123","subject":{"type":"person","national_id":"CW-1980013101","first_name":"Maria","last_name":"Martina","date_of_birth":"1980-01-31"},"purpose":"loan_application","consent":{"given_at":"2026-11-20T10:00:00Z"}}"#;
    let bank_name = bank["name"].as_str().unwrap_or_default();
    let admin = &s.admin_url;
    let info_file = s.data_dir.join(INFO_FILE);
    let info_file = info_file.display();
    let feed = asset_dir("config/sandbox")
        .join("sample-feed.csv")
        .display()
        .to_string();
    let step = |says: &str, command: String| Step {
        says: says.to_owned(),
        command,
    };
    vec![
        step(
            &format!(
                "A user of {bank_name} gets a token (if that fails it says so; each step below that \
                 captures an id checks it the same way):"
            ),
            format!(
                "TOKEN=$(curl -s {token_url} {form} | sed -n 's/.*\"access_token\":\"\\([^\"]*\\)\".*/\\1/p')\n\
                 [ -n \"$TOKEN\" ] && echo 'got a token' || {{ echo 'no token: is the sandbox running?'; false; }}"
            ),
        ),
        step(
            "A fresh Idempotency-Key for this run (every run of the walk-through posts a new request):",
            "KEY=demo-$(date +%s)-$RANDOM".to_owned(),
        ),
        step(
            "Post a credit-report request; the answer (201 within the 5 s wait, else 202) carries its id:",
            format!(
                "RESP=$(curl -s {d}/api/v1/report-requests -H \"Authorization: Bearer $TOKEN\" \\\n    \
                 -H 'Content-Type: application/json' -H \"Idempotency-Key: $KEY\" -H 'Prefer: wait=5' \\\n    \
                 -d '{body}')\n\
                 echo \"$RESP\"\n\
                 ID=$(echo \"$RESP\" | sed -n 's/.*\"id\":\"\\([^\"]*\\)\".*/\\1/p')\n\
                 [ -n \"$ID\" ] && echo \"request id: $ID\" || {{ echo 'no request id: the problem document above says why'; false; }}"
            ),
        ),
        step(
            "Posting again with the same key is answered from the first request (same id, no second request):",
            format!(
                "curl -s -i {d}/api/v1/report-requests -H \"Authorization: Bearer $TOKEN\" \\\n    \
                 -H 'Content-Type: application/json' -H \"Idempotency-Key: $KEY\" \\\n    \
                 -d '{body}' | grep -i -e '^HTTP/' -e '^idempotent-replayed'"
            ),
        ),
        step(
            "It is in the simulated org:",
            format!("curl -s {sf}/__sim/records/Credit_Report_Request__c; echo"),
        ),
        step(
            "Its status goes received -> submitted -> in_progress -> completed (the simulated bureau rejects \
             every 5th request: see /__sim/automation); wait for the bureau (at most a minute; an answer \
             without a status, a problem document, ends the wait and shows in the next step):",
            format!(
                "for i in $(seq 60); do\n    \
                 STATUS=$(curl -s -H \"Authorization: Bearer $TOKEN\" {d}/api/v1/report-requests/$ID \
                 | sed -n 's/.*\"status\":\"\\([a-z_]*\\)\".*/\\1/p')\n    \
                 echo \"status: $STATUS\"\n    \
                 case \"$STATUS\" in completed|rejected|action_required|failed|'') break;; esac\n    \
                 sleep 1\n\
                 done"
            ),
        ),
        step(
            "The whole status document (the same members as the webhooks' data, plus delivery detail):",
            format!(
                "curl -s -H \"Authorization: Bearer $TOKEN\" {d}/api/v1/report-requests/$ID; echo"
            ),
        ),
        step(
            "The bank's receiver got signed webhooks (report_request.in_progress, then .completed with the \
             report's link, size and SHA-256):",
            format!("curl -s {hooks}; echo"),
        ),
        step(
            "Download the report (owner only, decrypted from the vault; a request without a report answers \
             409 saying why):",
            format!(
                "curl -s -o report.pdf -w '%{{http_code}} %{{content_type}}\\n' -H \"Authorization: Bearer $TOKEN\" \
                 {d}/api/v1/report-requests/$ID/report"
            ),
        ),
        step(
            "Rejections, requests needing action and failures also reach the bank's contacts by e-mail:",
            format!("curl -s {mail}; echo"),
        ),
        step(
            "Upload a credit data feed: 8 tradelines, 4 of them with deliberate mistakes (202 once stored):",
            format!(
                "UP=$(curl -s '{d}/api/v1/uploads?name=sample-feed.csv' -H \"Authorization: Bearer $TOKEN\" \\\n    \
                 -H 'Content-Type: text/csv' --data-binary @{feed})\n\
                 echo \"$UP\"\n\
                 UPLOAD=$(echo \"$UP\" | sed -n 's/.*\"id\":\"\\([^\"]*\\)\".*/\\1/p')\n\
                 [ -n \"$UPLOAD\" ] && echo \"upload id: $UPLOAD\" || {{ echo 'no upload id: the problem document above says why'; false; }}"
            ),
        ),
        step(
            "Processing is asynchronous; wait for it, then read the counts:",
            format!(
                "for i in $(seq 60); do\n    \
                 DOC=$(curl -s -H \"Authorization: Bearer $TOKEN\" {d}/api/v1/uploads/$UPLOAD)\n    \
                 case \"$DOC\" in *'\"status\":\"completed\"'*|*'\"status\":\"failed\"'*|*'/problems/'*) break;; esac\n    \
                 sleep 1\n\
                 done; echo \"$DOC\""
            ),
        ),
        step(
            "errors.csv: the rejected rows exactly as uploaded, with code, column, message and remedy (fix, upload \
             again); every reason code is listed at /api/v1/reason-codes:",
            format!(
                "curl -s -H \"Authorization: Bearer $TOKEN\" {d}/api/v1/uploads/$UPLOAD/errors.csv"
            ),
        ),
        step(
            "The stale-record gatekeeper, on demand: a dry run first, then for real. Records the bank stopped \
             reporting are terminated (never those in dispute or closed), and the bank is warned ahead about \
             those that soon will be:",
            format!(
                "ADMIN_TOKEN=$(sed -n 's/.*\"token\": *\"\\([0-9a-f]*\\)\".*/\\1/p' {info_file})\n\
                 curl -s -X POST {admin}/admin/v1/records/gatekeeper -H \"Authorization: Bearer $ADMIN_TOKEN\" \\\n    \
                 -H 'Content-Type: application/json' -d '{{\"dry_run\":true}}'; echo\n\
                 curl -s -X POST {admin}/admin/v1/records/gatekeeper -H \"Authorization: Bearer $ADMIN_TOKEN\" \\\n    \
                 -H 'Content-Type: application/json' -d '{{\"dry_run\":false}}'; echo"
            ),
        ),
        step(
            "Demo Bank A's receiver got a signed credit_records.stale_warning webhook (and its desk an e-mail) \
             about the record that is a week from stale:",
            format!(
                "for i in $(seq 10); do curl -s {hooks} | grep -q 'credit_records.stale_warning' && break; sleep 1; done\n\
                 curl -s {hooks} | grep -o 'credit_records.stale_warning' | head -1"
            ),
        ),
        step(
            "A bad request gets every problem at once (RFC 9457):",
            format!(
                "curl -s {d}/api/v1/report-requests -H \"Authorization: Bearer $TOKEN\" \
                 -H 'Content-Type: application/json' \\\n    -d '{{\"subject\":{{\"type\":\"person\"}},\"purpose\":\"lunch\"}}'; echo"
            ),
        ),
    ]
}

/// The walk-through as printed: URLs, then each step as a comment and its command.
fn walkthrough_text(s: &Sandbox) -> String {
    let d = &s.daemon_url;
    let info_path = s.data_dir.join(INFO_FILE);
    let mut out = format!(
        "\ncreditlink sandbox is running.\n  \
         daemon:            {d}   (/livez /readyz /metrics /api/v1/openapi.json)\n  \
         simulated org:     {sf}   (/__sim/records/Credit_Report_Request__c, /__sim/stats)\n  \
         bank receivers:    {hooks}   (and demo-bank-b), e-mail sink: {mail}\n  \
         info for scripts:  {info}   (URLs, token requests, the admin token)\n  \
         admin API:         {admin}/admin/v1   (creditlink outbox list --sandbox {dir})\n  \
         dashboard:         {d}/ui/   (log in as rep@demobanka.sim / demo-bank-a-password; more in ui_users)\n  \
         widget demo:       {widget}   (a bank intranet page on another origin)\n\n\
         The data dir keeps this sandbox's store and its simulated org (saved on Ctrl-C): run it again on the\n\
         same dir and earlier requests, keys and reports are still there; delete the dir to start afresh.\n\n\
         Try it (bash, curl and sed; paste the steps in order into one shell):\n",
        sf = s.sim.base_url(),
        hooks = s.info["banks"][0]["webhook_url"]
            .as_str()
            .unwrap_or_default(),
        mail = s.info["mail_url"].as_str().unwrap_or_default(),
        widget = s.info["banks"][0]["widget_demo_url"]
            .as_str()
            .unwrap_or_default(),
        info = info_path.display(),
        dir = s.data_dir.display(),
        admin = s.admin_url,
    );
    for step in walkthrough(s) {
        out.push_str(&format!("\n  # {}\n", step.says));
        for line in step.command.lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out.push_str("\nStop with Ctrl-C.\n");
    out
}

/// A directory the sandbox reads from the source tree (`mappings`, the demo vault key): relative to the working
/// directory when it exists there (running from a checkout or the Docker image's workdir), else the source tree
/// the binary was built from. `CREDITLINK_SANDBOX_MAPPINGS` overrides the mappings directory.
fn asset_dir(relative: &str) -> PathBuf {
    if relative == "mappings"
        && let Some(dir) = std::env::var_os("CREDITLINK_SANDBOX_MAPPINGS")
    {
        return PathBuf::from(dir);
    }
    let local = PathBuf::from(relative);
    if local.is_dir() {
        return std::fs::canonicalize(&local).unwrap_or(local);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn random_hex() -> String {
    let bytes: [u8; 24] = rand::rng().random();
    hex::encode(bytes)
}

fn config_text(
    sim_url: &str,
    daemon_url: &str,
    data_dir: &Path,
    mappings: &Path,
    vault_keys: &Path,
) -> String {
    let data_dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    format!(
        r#"# Generated by `creditlink sandbox`; secrets come from the sandbox process, never from this file.
[server]
listen = "127.0.0.1:0"
public_url = "{daemon_url}"

[store]
data_dir = {data_dir:?}

[salesforce]
login_url = "{sim_url}"
org_id = "00D5Y000001CLNKUA4"
integration_username = "creditlink-integration@bureau.sim"

[salesforce.auth]
flow = "jwt_bearer"
consumer_key = "3MVG9creditlink.sandbox.consumer"
username = "creditlink-integration@bureau.sim"
audience = "https://login.salesforce.com"
private_key = {{ env = "CREDITLINK_SANDBOX_JWT_KEY" }}
client_secret = {{ env = "CREDITLINK_SANDBOX_CLIENT_SECRET" }}

[mappings]
dir = {mappings:?}

[admin]
token = {{ env = "CREDITLINK_SANDBOX_ADMIN_TOKEN" }}

[inbound]
listener_secret = {{ env = "CREDITLINK_SANDBOX_LISTENER_SECRET" }}
poll_interval_ms = 5000
poll_overlap_ms = 60000
vault_keys = {vault_keys:?}

[records]
# The gatekeeper runs on demand here (the walk-through shows it); a real daemon runs it daily.
gatekeeper_interval_hours = 0

[ui]
# The dashboard at {daemon_url}/ui/ logs in through the connected app above; the analyst is a bureau admin.
admin_usernames = ["analyst@bureau.sim"]

[webhooks]
# The demo receivers listen on plain http on loopback: allowed here only.
allow_http = true
allow_private = true

[notifications]
smtp_host = "127.0.0.1"
starttls = "none"
from = "creditlink@bureau.sim"
bureau_contacts = ["integration-desk@bureau.sim"]

[[banks]]
account_id = "0015Y00000BANKAQA5"
code = "DBA"
name = "Demo Bank A"
webhook_url = "http://127.0.0.1:1/replaced-by-the-sandbox"
webhook_secret = {{ env = "CREDITLINK_SANDBOX_WEBHOOK_SECRET_0" }}
contacts = ["credit-desk@demobanka.sim"]

[[banks]]
account_id = "0015Y00000BANKBQA5"
code = "DBB"
name = "Demo Bank B"
webhook_url = "http://127.0.0.1:1/replaced-by-the-sandbox"
webhook_secret = {{ env = "CREDITLINK_SANDBOX_WEBHOOK_SECRET_1" }}
contacts = ["credit-desk@demobankb.sim"]
"#
    )
}
