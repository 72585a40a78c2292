//! `creditlink sandbox`: the daemon wired to an in-process simulated Salesforce org, on one machine.
//!
//! The sandbox writes its generated config to `<data-dir>/sandbox.toml` with every secret as an `{ env = .. }`
//! reference resolved from an in-process environment map, so no secret is written to disk: the demo JWT key is
//! compiled in (it is public, `config/sandbox/README.md`), the admin token is fresh per run. It then writes
//! `<data-dir>/sandbox.json` (DESIGN.md §4) and prints a copy-paste walk-through. Tests use [`Sandbox::start`]
//! directly to get a whole running loop with their own overrides.

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
/// Path names of the demo banks' webhook receivers, in `[[banks]]` order.
const BANK_SLUGS: [&str; 2] = ["demo-bank-a", "demo-bank-b"];

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
}

impl SandboxOptions {
    pub fn new(data_dir: PathBuf, listen: SocketAddr) -> Self {
        SandboxOptions {
            data_dir,
            listen,
            sim: SimOptions::default(),
            overrides: Vec::new(),
            automate: true,
        }
    }
}

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
    shutdown: CancellationToken,
    daemon: JoinHandle<anyhow::Result<()>>,
    /// Stops the bank receivers and the SMTP sink.
    helpers: CancellationToken,
}

impl Sandbox {
    /// Starts the simulated org, then the daemon against it; returns once the daemon is listening.
    pub async fn start(opts: SandboxOptions) -> anyhow::Result<Sandbox> {
        std::fs::create_dir_all(&opts.data_dir)
            .with_context(|| format!("creating {}", opts.data_dir.display()))?;
        let sim = sim::spawn("127.0.0.1:0".parse()?, opts.sim.clone()).await?;
        // The demo banks' webhook receivers (verifying signatures) and a local SMTP sink for notifications.
        let helpers = CancellationToken::new();
        let secrets: Vec<(String, WebhookSecret)> = BANK_SLUGS
            .iter()
            .map(|slug| (slug.to_string(), WebhookSecret::generate()))
            .collect();
        let mail = spawn_smtp_sink("127.0.0.1:0".parse()?, helpers.clone()).await?;
        let smtp_port = mail.addr.port();
        let receivers = spawn_bank_receivers_with_mail(
            "127.0.0.1:0".parse()?,
            secrets.clone(),
            Some(mail),
            helpers.clone(),
        )
        .await?;
        let listener = TcpListener::bind(opts.listen)
            .await
            .with_context(|| format!("binding {}", opts.listen))?;
        let daemon_url = format!("http://{}", listener.local_addr()?);
        let admin_listener = TcpListener::bind("127.0.0.1:0").await?;
        let admin_url = format!("http://{}", admin_listener.local_addr()?);
        let admin_token = random_hex();
        let listener_secret = random_hex();
        let config_path = opts.data_dir.join("sandbox.toml");
        std::fs::write(
            &config_path,
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
        env.push((
            "CREDITLINK__NOTIFICATIONS__SMTP_PORT".into(),
            smtp_port.to_string(),
        ));
        env.extend(opts.overrides.iter().cloned());
        let env: Env = env.into_iter().collect();
        let config = config::load(&config_path, &env)
            .map_err(|e| anyhow::anyhow!("sandbox config:\n{e}"))?;
        let daemon = Daemon::build(config).await?;
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
            sim.set_automation(automation);
        }

        let mut info = sim.info();
        info["daemon_url"] = json!(daemon_url);
        info["admin_url"] = json!(admin_url);
        if let Some(banks) = info["banks"].as_array_mut() {
            for (bank, slug) in banks.iter_mut().zip(BANK_SLUGS) {
                bank["webhook_url"] = json!(receivers.url_for(slug).to_string());
            }
        }
        info["mail_url"] = json!(format!("{}mail", receivers.base_url));
        let info_path = opts.data_dir.join("sandbox.json");
        let tmp = opts.data_dir.join("sandbox.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&info)?)?;
        std::fs::rename(&tmp, &info_path)?;
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

/// `creditlink sandbox`: start, print the walk-through, run until `shutdown`.
pub async fn run(
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let data_dir = data_dir.unwrap_or_else(|| PathBuf::from("creditlink-sandbox"));
    let listen = listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let sandbox = Sandbox::start(SandboxOptions::new(data_dir.clone(), listen)).await?;
    println!("{}", walkthrough(&sandbox, &data_dir));
    shutdown.cancelled().await;
    sandbox.stop().await
}

fn walkthrough(s: &Sandbox, data_dir: &Path) -> String {
    let bank = &s.info["banks"][0];
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
    format!(
        r#"
creditlink sandbox is running.
  daemon:              {d}   (/livez /readyz /metrics /api/v1/openapi.json)
  bank receivers:      {hooks}   (and demo-bank-b), e-mail sink: {mail}
  simulated org:       {sf}   (/__sim/records/Credit_Report_Request__c, /__sim/stats)
  info for scripts:    {info}
  admin token:         {admin}   (GET {a}/admin/v1/outbox)

Try it (bash; {bank_name} posts a credit-report request):

  TOKEN=$(curl -s {token_url} {form} | python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])')

  curl -s -i {d}/api/v1/report-requests \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -H 'Idempotency-Key: demo-001' -H 'Prefer: wait=5' \
    -d '{{"reference":"LN-2026-000123","subject":{{"type":"person","national_id":"CW-1980013101","first_name":"Maria","last_name":"Martina","date_of_birth":"1980-01-31"}},"purpose":"loan_application","consent":{{"given_at":"2026-11-20T10:00:00Z"}}}}'

  # 201 with the Salesforce id (or 202 and a status URL). See it in the org:
  curl -s {sf}/__sim/records/Credit_Report_Request__c | python3 -m json.tool

  # A few seconds later the simulated bureau completes it (every 5th request is rejected) and the bank's
  # receiver gets signed webhooks (report_request.updated, then .completed with a link and a SHA-256):
  curl -s {hooks} | python3 -m json.tool

  # Download the finished report (owner only; decrypted from the vault):
  curl -s -o report.pdf -D - -H "Authorization: Bearer $TOKEN" {d}/api/v1/report-requests/<id>/report

  # Rejections and requests needing action also reach the bank's contacts by e-mail:
  curl -s {mail} | python3 -m json.tool

  # A bad request gets every problem at once (RFC 9457):
  curl -s {d}/api/v1/report-requests -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{{"subject":{{"type":"person"}},"purpose":"lunch"}}' | python3 -m json.tool

Stop with Ctrl-C.
"#,
        info = data_dir.join("sandbox.json").display(),
        admin = s.admin_token,
        a = s.admin_url,
        bank_name = bank["name"].as_str().unwrap_or_default(),
        token_url = req["url"].as_str().unwrap_or_default(),
        form = form.join(" "),
        hooks = bank["webhook_url"].as_str().unwrap_or_default(),
        mail = s.info["mail_url"].as_str().unwrap_or_default(),
    )
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
