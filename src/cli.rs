//! The command line: parsing, exit codes and dispatch to the library.
//!
//! Exit codes are a contract (docs/cli.md): 0 ok, 64 bad config or usage (`EX_USAGE`, linkerd's choice too),
//! 1 runtime failure. clap's own usage errors (exit 2) are mapped to 64; `--help` and `--version` exit 0.
//!
//! Commands that need the config load it first, so a bad config always ends as 64 before anything starts.
//! One place turns SIGTERM/SIGINT into a cancelled [`CancellationToken`] that every command receives.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::{self, Config, ConfigErrors, Env, Problem};
use crate::telemetry::{self, LogFormat};

/// creditlink: a daemon between a credit bureau's Salesforce org and its member banks.
#[derive(Debug, Parser)]
#[command(name = "creditlink", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Run(RunArgs),
    /// Run the daemon with an in-process simulated Salesforce org and simulated banks.
    Sandbox(SandboxArgs),
    /// Run a simulator on its own.
    #[command(subcommand)]
    Sim(SimCommand),
    /// Validate a config file and the mappings it points to; list every problem.
    CheckConfig(ConfigArg),
    /// Inspect and act on the outbox (dead letters, replays).
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Report vault maintenance.
    #[command(subcommand)]
    Vault(VaultCommand),
    /// Credit records: the stale-record gatekeeper on demand, the duplicate scan.
    #[command(subcommand)]
    Records(RecordsCommand),
}

#[derive(Debug, Subcommand)]
pub enum RecordsCommand {
    /// Run the stale-record gatekeeper now (through the running daemon's admin API); prints its report.
    Gatekeeper(GatekeeperArgs),
    /// Scan the org's credit records for duplicates by the configured rules; merge them unless --dry-run.
    Dedupe(DedupeArgs),
}

#[derive(Debug, Args)]
pub struct GatekeeperArgs {
    #[command(flatten)]
    pub target: AdminTarget,
    /// Report what would happen; change nothing and warn nobody.
    #[arg(long)]
    pub dry_run: bool,
    /// Judge records as of this day (YYYY-MM-DD; default today, UTC).
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<chrono::NaiveDate>,
}

#[derive(Debug, Args)]
pub struct DedupeArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Report the groups found; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Re-encrypt every stored report with the newest key in `[inbound] vault_keys` (older keys keep
    /// decrypting until then). Safe to interrupt and run again.
    Rotate(ConfigArg),
}

/// `--config <FILE>`.
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The daemon config file (see config/creditlink.toml).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Overrides [store] data_dir.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Overrides [server] listen.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Where the sandbox keeps its store and writes sandbox.json.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The daemon's listen address.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// The simulated Salesforce org alone, seeded with the demo org by default.
    Salesforce(SimSalesforceArgs),
}

#[derive(Debug, Args)]
pub struct SimSalesforceArgs {
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// A seed file replacing the demo org.
    #[arg(long, value_name = "FILE")]
    pub seed: Option<PathBuf>,
    /// Where to write the JSON info file (URLs, token requests).
    #[arg(long, value_name = "FILE")]
    pub info_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List messages that need attention.
    List(AdminTarget),
    /// Show one message and its attempts.
    Show(OutboxIdArgs),
    /// Queue a failed or dead message again.
    Retry(OutboxIdArgs),
    /// Give up on a message for good.
    Discard(OutboxIdArgs),
}

/// Which running daemon the admin commands talk to: one started with a config file, or a sandbox.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct AdminTarget {
    /// The daemon's config file (its public URL and `[admin] token`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The data dir of a running `creditlink sandbox` (reads its sandbox.json).
    #[arg(long, value_name = "DIR")]
    pub sandbox: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct OutboxIdArgs {
    /// The message id.
    pub id: String,
    #[command(flatten)]
    pub target: AdminTarget,
}

/// Why a command failed, and so which exit code it ends with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The config (or mappings) did not validate: every problem, one per line.
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// The command line made sense to clap but not to us.
    #[error("{0}")]
    Usage(String),
    /// Something failed while running.
    #[error(transparent)]
    Runtime(#[from] anyhow::Error),
}

impl CliError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Config(_) | CliError::Usage(_) => ExitCode::from(EXIT_USAGE),
            CliError::Runtime(_) => ExitCode::FAILURE,
        }
    }
}

/// `EX_USAGE` from sysexits.h: bad config or bad command line.
pub const EXIT_USAGE: u8 = 64;
/// The sandbox's info file in its data dir; `outbox --sandbox` reads it, so it exists in every build.
pub const SANDBOX_INFO_FILE: &str = "sandbox.json";

/// Parses the process's arguments. On `--help`/`--version` or a usage error, prints clap's text and returns the
/// exit code to end with (0 or 64).
pub fn parse() -> Result<Cli, ExitCode> {
    Cli::try_parse().map_err(|e| {
        let _ = e.print();
        match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                ExitCode::SUCCESS
            }
            _ => ExitCode::from(EXIT_USAGE),
        }
    })
}

/// Runs a parsed command to completion (inside a tokio runtime) and returns the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    let shutdown = shutdown_on_signal();
    match dispatch(cli.command, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&err);
            err.exit_code()
        }
    }
}

async fn dispatch(command: Command, shutdown: CancellationToken) -> Result<(), CliError> {
    match command {
        Command::CheckConfig(args) => check_config(&args.config).await,
        Command::Run(args) => {
            let mut config = load_config(&args.config.config)?;
            config.override_from_flags(args.listen, args.data_dir);
            init_telemetry(config.telemetry.format, &config.telemetry.level)?;
            run_daemon(config, shutdown).await
        }
        Command::Sandbox(args) => {
            init_telemetry(LogFormat::Pretty, "info")?;
            run_sandbox(args, shutdown).await
        }
        Command::Sim(command) => {
            init_telemetry(LogFormat::Pretty, "info")?;
            run_sim(command, shutdown).await
        }
        Command::Vault(VaultCommand::Rotate(args)) => {
            let config = load_config(&args.config)?;
            rotate_vault(&config).await
        }
        Command::Records(RecordsCommand::Gatekeeper(args)) => {
            let admin = admin_endpoint(&args.target)?;
            run_gatekeeper(admin, &args).await
        }
        Command::Records(RecordsCommand::Dedupe(args)) => {
            let config = load_config(&args.config.config)?;
            init_telemetry(config.telemetry.format, &config.telemetry.level)?;
            run_dedupe(&config, args.dry_run).await
        }
        Command::Outbox(command) => {
            let target = match &command {
                OutboxCommand::List(t) => t,
                OutboxCommand::Show(a) | OutboxCommand::Retry(a) | OutboxCommand::Discard(a) => {
                    &a.target
                }
            };
            let admin = admin_endpoint(target)?;
            run_outbox(admin, command).await
        }
    }
}

/// Where the admin API is and its token.
struct AdminEndpoint {
    base: String,
    token: secrecy::SecretString,
    /// What to say when the daemon cannot be reached.
    hint: String,
}

fn admin_endpoint(target: &AdminTarget) -> Result<AdminEndpoint, CliError> {
    if let Some(dir) = &target.sandbox {
        let path = dir.join(SANDBOX_INFO_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            CliError::Usage(format!(
                "cannot read {} ({e}): is `creditlink sandbox --data-dir {}` running?",
                path.display(),
                dir.display()
            ))
        })?;
        let info: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| CliError::Usage(format!("{} is not valid JSON: {e}", path.display())))?;
        let base = info["admin_url"].as_str();
        let token = info["admin"]["token"].as_str();
        let (Some(base), Some(token)) = (base, token) else {
            return Err(CliError::Usage(format!(
                "{} has no admin_url or admin.token (written by an older creditlink? restart the sandbox)",
                path.display()
            )));
        };
        return Ok(AdminEndpoint {
            base: base.trim_end_matches('/').to_owned(),
            token: token.into(),
            hint: format!(
                "is `creditlink sandbox --data-dir {}` running?",
                dir.display()
            ),
        });
    }
    let Some(path) = &target.config else {
        return Err(CliError::Usage(
            "pass --config <FILE> or --sandbox <DIR>".into(),
        ));
    };
    let config = load_config(path)?;
    init_telemetry(config.telemetry.format, &config.telemetry.level)?;
    // The admin API listens on its own address (`[admin] listen`), never the bank listener's.
    let listen = config.admin.listen;
    let host = if listen.ip().is_unspecified() {
        std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), listen.port())
    } else {
        listen
    };
    Ok(AdminEndpoint {
        base: format!("http://{host}"),
        token: config.admin.token.clone(),
        hint: "is `creditlink run` up?".into(),
    })
}

/// `check-config`: load with the real environment, validate mappings, print a one-line summary when valid.
async fn check_config(path: &Path) -> Result<(), CliError> {
    let config = load_config(path)?;
    let mut problems = check_mappings(&config);
    problems.extend(check_database(&config).await);
    if !problems.is_empty() {
        return Err(ConfigErrors::new(problems).into());
    }
    println!(
        "{}: ok: salesforce org {} ({}), {} bank(s), listen {}, data in {}",
        path.display(),
        config.salesforce.org_id,
        config.salesforce.auth.flow.name(),
        config.banks.len(),
        config.server.listen,
        config.store.data_dir.display(),
    );
    Ok(())
}

/// With `[store] backend = "postgres"`: the database is reachable and its schema is the one this
/// binary migrates to (changing nothing).
async fn check_database(config: &Config) -> Option<Problem> {
    let crate::config::StoreBackend::Postgres { url } = &config.store.backend else {
        return None;
    };
    let check = crate::store::postgres::PgBackend::check(url);
    let message = match tokio::time::timeout(std::time::Duration::from_secs(10), check).await {
        Ok(Ok(_)) => return None,
        Ok(Err(e)) => format!("[store.postgres] url: {e}"),
        Err(_) => "[store.postgres] url: the database did not answer within 10 s".to_string(),
    };
    Some(Problem::in_file(&config.path, message))
}

/// Validates the mapping files the config points to.
///
/// Every problem of the mapping set in `[mappings] dir`, as config problems with file and line.
pub fn check_mappings(config: &Config) -> Vec<Problem> {
    match crate::mapping::MappingSet::load_dir(&config.mappings.dir) {
        Ok(_) => Vec::new(),
        Err(problems) => problems
            .into_iter()
            .map(|p| match p.line {
                Some(line) => Problem::at(&p.file, line, 1, p.message),
                None => Problem::in_file(&p.file, p.message),
            })
            .collect(),
    }
}

fn load_config(path: &Path) -> Result<Config, CliError> {
    Ok(config::load(path, &Env::from_process())?)
}

fn init_telemetry(format: LogFormat, level: &str) -> Result<(), CliError> {
    telemetry::init(format, level).map_err(|e| CliError::Usage(e.to_string()))
}

fn report(err: &CliError) {
    match err {
        CliError::Config(errors) => {
            eprintln!("{errors}");
            let n = errors.problems().len();
            eprintln!(
                "creditlink: {n} configuration problem{}",
                if n == 1 { "" } else { "s" }
            );
        }
        CliError::Usage(message) => eprintln!("creditlink: {message}"),
        CliError::Runtime(error) => eprintln!("creditlink: {error:#}"),
    }
}

/// The one place that turns SIGTERM/SIGINT into a cancelled token. Commands drain on it; the configured
/// `shutdown_grace_ms` bounds how long that may take.
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown signal received");
        cancel.cancel();
    });
    token
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the process");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `run`: the daemon (server + workers) until `shutdown` fires.
async fn run_daemon(config: Config, shutdown: CancellationToken) -> Result<(), CliError> {
    crate::app::run(config, shutdown).await?;
    Ok(())
}

/// `sandbox`: daemon + in-process simulated org, until `shutdown` fires.
#[cfg(feature = "sim")]
async fn run_sandbox(args: SandboxArgs, shutdown: CancellationToken) -> Result<(), CliError> {
    crate::sandbox::run(args.data_dir, args.listen, shutdown).await?;
    Ok(())
}

/// `sim salesforce`: the simulated org alone, until SIGTERM/SIGINT.
#[cfg(feature = "sim")]
async fn run_sim(command: SimCommand, shutdown: CancellationToken) -> Result<(), CliError> {
    let SimCommand::Salesforce(args) = command;
    let opts = crate::sim::StandaloneOptions {
        listen: args.listen,
        seed: args.seed,
        info_file: args.info_file,
    };
    crate::sim::run_standalone(opts, shutdown).await?;
    Ok(())
}

/// What a production build (`--no-default-features`) says to `sandbox` and `sim`: exit 64, nothing started.
pub const NO_SIMULATOR: &str = "this build of creditlink has no simulator (it was built without the `sim` \
     feature); `creditlink sandbox` and `creditlink sim salesforce` need a build with default features";

#[cfg(not(feature = "sim"))]
async fn run_sandbox(_args: SandboxArgs, _shutdown: CancellationToken) -> Result<(), CliError> {
    Err(CliError::Usage(NO_SIMULATOR.into()))
}

#[cfg(not(feature = "sim"))]
async fn run_sim(_command: SimCommand, _shutdown: CancellationToken) -> Result<(), CliError> {
    Err(CliError::Usage(NO_SIMULATOR.into()))
}

/// `vault rotate`: re-encrypts the vault under the newest key, with a progress bar (the vault's files, or
/// with `[store] backend = "postgres"` the database's `vault_reports`).
async fn rotate_vault(config: &Config) -> Result<(), CliError> {
    let Some(inbound) = &config.inbound else {
        return Err(CliError::Usage(
            "the config has no [inbound] section, so there is no report vault".into(),
        ));
    };
    let keyring =
        crate::vault::Keyring::from_dir(&inbound.vault_keys).map_err(anyhow::Error::from)?;
    let active = keyring.active().map_err(anyhow::Error::from)?.clone();
    if let crate::config::StoreBackend::Postgres { url } = &config.store.backend {
        let store = crate::store::Store::connect_postgres(url)
            .await
            .map_err(anyhow::Error::from)?;
        let storage = store
            .vault_storage()
            .ok_or_else(|| anyhow::anyhow!("the PostgreSQL store has no vault"))?;
        tokio::task::spawn_blocking(move || {
            crate::vault::rotate_storage_cli(storage, keyring, &active)
        })
        .await
        .map_err(anyhow::Error::from)??;
        return Ok(());
    }
    let dir = inbound.vault_dir(&config.store.data_dir);
    crate::vault::rotate_cli(&dir, keyring, &active)?;
    Ok(())
}

/// `records gatekeeper`: `POST /admin/v1/records/gatekeeper` on the running daemon (which owns the store the
/// audit and the warnings go to). Prints the JSON report.
async fn run_gatekeeper(admin: AdminEndpoint, args: &GatekeeperArgs) -> Result<(), CliError> {
    let mut body = serde_json::json!({ "dry_run": args.dry_run });
    if let Some(as_of) = args.as_of {
        body["as_of"] = serde_json::json!(as_of.to_string());
    }
    let http = reqwest::Client::new();
    let request = http
        .post(format!("{}/admin/v1/records/gatekeeper", admin.base))
        .json(&body);
    print_admin_answer(admin, request).await
}

/// `records dedupe`: scans the org with the daemon's Salesforce credentials (no store needed), a progress bar
/// on a terminal, the JSON report on stdout.
async fn run_dedupe(config: &Config, dry_run: bool) -> Result<(), CliError> {
    use std::io::IsTerminal as _;
    let client = crate::salesforce::SalesforceClient::new(crate::app::client_settings(config))
        .map_err(anyhow::Error::from)?;
    let rules = config
        .records
        .clone()
        .unwrap_or_default()
        .rule_set(&config.banks);
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} scanning credit records [{bar:40}] {pos}/{len} ({eta})",
            )
            .map_err(anyhow::Error::from)?,
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let report = crate::records::dedupe::run(&client, &rules, dry_run, &bar)
        .await
        .map_err(anyhow::Error::from)?;
    bar.finish_and_clear();
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    if report.failed > 0 {
        return Err(CliError::Runtime(anyhow::anyhow!(
            "Salesforce refused {} update(s); see the log, then run again",
            report.failed
        )));
    }
    Ok(())
}

/// `outbox list|show|retry|discard`: a client of the daemon's admin API (`/admin/v1/outbox`), because only the
/// running daemon may open the store. Prints the JSON answer.
async fn run_outbox(admin: AdminEndpoint, command: OutboxCommand) -> Result<(), CliError> {
    let base = &admin.base;
    let http = reqwest::Client::new();
    let request = match &command {
        OutboxCommand::List(_) => http.get(format!("{base}/admin/v1/outbox?limit=100")),
        OutboxCommand::Show(a) => http.get(format!("{base}/admin/v1/outbox/{}", a.id)),
        OutboxCommand::Retry(a) => http.post(format!("{base}/admin/v1/outbox/{}/retry", a.id)),
        OutboxCommand::Discard(a) => http.post(format!("{base}/admin/v1/outbox/{}/discard", a.id)),
    };
    print_admin_answer(admin, request).await
}

/// Sends an admin API request with the token and prints the JSON answer; a non-2xx answer is a failure.
async fn print_admin_answer(
    admin: AdminEndpoint,
    request: reqwest::RequestBuilder,
) -> Result<(), CliError> {
    use secrecy::ExposeSecret;
    let base = &admin.base;
    let response = request
        .bearer_auth(admin.token.expose_secret())
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the daemon at {base} ({}): {e}", admin.hint))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.map_err(anyhow::Error::from)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&body).unwrap_or_default()
    );
    if status.is_success() {
        Ok(())
    } else {
        Err(CliError::Runtime(anyhow::anyhow!(
            "the daemon answered {status}"
        )))
    }
}
