//! Daemon configuration: one TOML file, then `CREDITLINK__SECTION__KEY` environment overrides, validated as a
//! whole.
//!
//! Layering follows zero-to-production (file, then prefixed env vars); reporting follows linkerd: [`load`] never
//! stops at the first problem but returns *every* unknown key, wrong type, invalid value and unreadable secret,
//! each with `file:line:column` (or the env var that set it), so `creditlink check-config` fixes a config in one
//! round. The environment is passed in ([`Env`]) rather than read from the process, so tests use a map.
//!
//! Secrets are never inline: a secret value is `{ file = "path" }` or `{ env = "VAR" }`, read at load time into
//! [`secrecy::SecretString`], so `Debug` of any config type shows `[REDACTED]` and never the value.
//!
//! Relative paths (`data_dir`, `mappings.dir`, secret files) are relative to the config file's directory.
//! Every key, its default and its purpose are documented in `config/creditlink.toml`.

mod banks;
mod delivery;
mod inbound;
mod notify;
mod problem;
mod reader;
mod records;
mod salesforce;
mod server;
mod tree;
mod ui;
mod uploads;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use banks::BankConfig;
pub use delivery::{DEFAULT_RETRY_SCHEDULE_MS, OutboxConfig, PusherConfig};
pub use inbound::{Cidr, InboundConfig};
pub use notify::{
    DEFAULT_WEBHOOK_RETRY_SCHEDULE_MS, NotificationsConfig, StartTls, WebhooksConfig,
};
pub use problem::{ConfigErrors, Location, Problem};
pub use records::{PRODUCT_TYPES, RecordsConfig, Threshold};
pub use salesforce::{
    AuthFlow, IntakeConfig, SalesforceAuth, SalesforceConfig, check_salesforce_id,
};
pub use server::{
    AdminConfig, Durability, MappingsConfig, ServerConfig, StoreBackend, StoreConfig,
    TelemetryConfig,
};
pub use ui::UiConfig;

use reader::{Ctx, Section};
use tree::Source;
pub use uploads::UploadsConfig;

/// Prefix of override variables: `CREDITLINK__SERVER__LISTEN` sets `[server] listen`.
pub const ENV_PREFIX: &str = "CREDITLINK__";

/// The whole, validated daemon configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was loaded from (for messages and for `check-config`).
    pub path: PathBuf,
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub telemetry: TelemetryConfig,
    pub salesforce: SalesforceConfig,
    pub intake: IntakeConfig,
    pub outbox: OutboxConfig,
    pub pusher: PusherConfig,
    pub webhooks: WebhooksConfig,
    pub notifications: NotificationsConfig,
    pub mappings: MappingsConfig,
    pub admin: AdminConfig,
    /// `[inbound]`; absent = the Salesforce → bank direction (listener, poller, vault) is not run.
    pub inbound: Option<InboundConfig>,
    /// `[ui]`; absent = no dashboard (`/ui/` answers 404).
    pub ui: Option<UiConfig>,
    pub banks: Vec<BankConfig>,
    /// `[records]`; absent = defaults, and the stale-record gatekeeper runs only on demand.
    pub records: Option<RecordsConfig>,
    /// `[uploads]`: credit data feeds.
    pub uploads: UploadsConfig,
}

impl Config {
    /// The bank whose Salesforce Account id this is.
    pub fn bank_by_account(&self, account_id: &str) -> Option<&BankConfig> {
        self.banks.iter().find(|b| b.account_id == account_id)
    }

    /// Applies `run --listen` / `--data-dir`, which win over file and environment. A relative `--data-dir` is
    /// relative to the working directory, like any command-line path.
    pub fn override_from_flags(&mut self, listen: Option<SocketAddr>, data_dir: Option<PathBuf>) {
        if let Some(listen) = listen {
            self.server.listen = listen;
        }
        if let Some(dir) = data_dir {
            self.store.data_dir = dir;
        }
    }
}

/// The environment a config is loaded against: override variables and the targets of `{ env = "VAR" }`.
/// `Debug` lists variable names only: values may be secrets.
#[derive(Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.vars.keys()).finish()
    }
}

impl Env {
    /// The process environment (variables that are not valid UTF-8 are skipped).
    pub fn from_process() -> Self {
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// `(variable, path after the prefix, value)` of every override variable, in name order.
    fn overrides(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.vars
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), k.strip_prefix(ENV_PREFIX)?, v.as_str())))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Env {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self {
            vars: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

/// Reads, overrides and validates the config at `path`, returning every problem found.
pub fn load(path: &Path, env: &Env) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors::new(vec![Problem::in_file(
            path,
            format!("cannot read config file: {e}"),
        )])
    })?;
    let source = Source::new(path, text);
    let (document, syntax_errors) = toml::de::DeTable::parse_recoverable(source.text());
    if !syntax_errors.is_empty() {
        // Validating a half-parsed document would add noise ("missing key") to the real problem.
        let problems = syntax_errors
            .iter()
            .map(|e| match e.span() {
                Some(span) => source.problem(&source.origin(span), e.message().trim()),
                None => Problem::in_file(path, e.message().trim()),
            })
            .collect();
        return Err(ConfigErrors::new(problems));
    }
    let mut root = tree::from_document(document.get_ref(), &source);

    let mut problems = Vec::new();
    for (var, key_path, value) in env.overrides() {
        if let Err(message) = tree::apply_override_indexed(&mut root, var, key_path, value) {
            problems.push(Problem {
                location: Location::Env {
                    var: var.to_string(),
                },
                message,
            });
        }
    }

    let base_dir = config_dir(path);
    let ctx = Ctx::new(&source, &base_dir, env);
    for problem in problems {
        ctx.report(problem);
    }
    let config = read_config(&ctx, &root, path);
    match config {
        Some(config) if !ctx.has_problems() => Ok(config),
        _ => {
            let mut problems = ctx.into_problems();
            if problems.is_empty() {
                problems.push(Problem::in_file(path, "incomplete configuration"));
            }
            Err(ConfigErrors::new(problems))
        }
    }
}

/// The directory relative paths are resolved against: the config file's, made absolute so the result does not
/// depend on a later change of working directory.
fn config_dir(path: &Path) -> PathBuf {
    let dir = path.parent().unwrap_or(Path::new(""));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

fn read_config(ctx: &Ctx<'_>, root: &tree::Table, path: &Path) -> Option<Config> {
    fn section<'a>(top: &mut Section<'a>, key: &'static str) -> Section<'a> {
        Section::table(top, key, &format!("[{key}]"))
    }
    let mut top = Section::root(ctx, root);

    let mut s = section(&mut top, "server");
    let server = server::read_server(&mut s);
    s.finish();
    let mut store_section = section(&mut top, "store");
    let store = server::read_store(&mut store_section);
    let mut s = section(&mut top, "telemetry");
    let telemetry = server::read_telemetry(&mut s);
    s.finish();
    let mut s = section(&mut top, "salesforce");
    let salesforce = salesforce::read_salesforce(&mut s);
    s.finish();
    let mut s = section(&mut top, "intake");
    let intake = salesforce::read_intake(&mut s);
    s.finish();
    server::check_retention(&mut store_section, &store, intake.idempotency_ttl);
    store_section.finish();
    let mut s = section(&mut top, "outbox");
    let outbox = delivery::read_outbox(&mut s);
    s.finish();
    let mut s = section(&mut top, "pusher");
    let pusher = delivery::read_pusher(&mut s);
    s.finish();
    let mut s = section(&mut top, "webhooks");
    let webhooks = notify::read_webhooks(&mut s);
    s.finish();
    let mut s = section(&mut top, "notifications");
    let notifications = notify::read_notifications(&mut s);
    s.finish();
    let mut s = section(&mut top, "mappings");
    let mappings = server::read_mappings(&mut s);
    s.finish();
    let mut s = section(&mut top, "admin");
    let admin = server::read_admin(&mut s);
    s.finish();
    let mut s = section(&mut top, "uploads");
    let uploads = uploads::read_uploads(&mut s);
    s.finish();
    let inbound = top.has("inbound").then(|| {
        let mut s = section(&mut top, "inbound");
        let inbound = inbound::read_inbound(&mut s);
        s.finish();
        inbound
    });
    let ui = top.has("ui").then(|| {
        let mut s = section(&mut top, "ui");
        let ui = ui::read_ui(&mut s);
        s.finish();
        ui
    });
    let banks = banks::read_banks(top.node("banks"), ctx);
    let records = top.has("records").then(|| {
        let mut s = section(&mut top, "records");
        let records = records::read_records(&mut s, &banks);
        s.finish();
        records
    });
    top.finish();
    notify::check_webhook_urls(ctx, &banks, &webhooks);

    Some(Config {
        path: path.to_path_buf(),
        server,
        store,
        telemetry,
        salesforce: salesforce?,
        intake,
        outbox,
        pusher,
        webhooks,
        notifications,
        mappings,
        admin: admin?,
        inbound,
        ui,
        banks,
        records,
        uploads,
    })
}
