//! Assembly: turns a validated [`Config`] into a running daemon — store, outbox, mappings, Salesforce client,
//! intake API, workers, ops endpoints — and runs it until the shutdown token fires.
//!
//! Start-up order matters for the durability promise: the store and outbox open (and recover whatever was in
//! flight) before the listener accepts a single request; Salesforce need not be reachable at start (requests
//! are accepted and queued; `/readyz` reports the missing token). Shutdown runs the other way: readiness
//! flips to 503, the HTTP server stops accepting and drains, workers stop between tasks (never mid-send), all
//! bounded by `[server] shutdown_grace` (every store write was durable when it returned: nothing to flush).
//! A store that stays unwritable (full disk) stops the daemon the same way, with an error exit, so the
//! supervisor restarts it on a reopened store (`tasks::StoreWatch`).

mod tasks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::limit::ConcurrencyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::config::{self, Config};
use crate::inbound::{Inbound, InboundSettings, open_vault};
use crate::intake::{self, Authenticator, BankQuota, IntakeState};
use crate::mapping::MappingSet;
use crate::ops::{self, Health, Heartbeat};
use crate::outbox::{DestinationKind, Outbox, RetryPolicy};
use crate::relay::bank::BankPusher;
use crate::relay::email::EmailPusher;
use crate::relay::{PusherSettings, SalesforcePusher};
use crate::salesforce::{self, AppCredentials, ClientSettings, SalesforceClient};
use crate::store::{Durability, Store};
use crate::vault::Vault;

/// A worker silent for longer than this makes `/readyz` fail (workers beat every loop, idle or not).
const WORKER_SILENCE: Duration = Duration::from_secs(30);

/// A daemon whose parts are built but not yet running; [`Daemon::run`] serves it.
pub struct Daemon {
    config: Config,
    store: Store,
    outbox: Outbox,
    mappings: Arc<ArcSwap<MappingSet>>,
    client: SalesforceClient,
    pusher: SalesforcePusher,
    /// The Salesforce → bank direction, when `[inbound]` is configured.
    inbound: Option<Inbound>,
    vault: Option<Arc<Vault>>,
    bank_pusher: BankPusher,
    /// `None` when `[notifications]` is disabled: e-mails then wait in the outbox.
    mailer: Option<EmailPusher>,
    health: Health,
}

impl Daemon {
    /// Opens the store (recovering in-flight messages), loads mappings and builds every part. No network I/O.
    pub async fn build(config: Config) -> anyhow::Result<Daemon> {
        let data_dir = &config.store.data_dir;
        crate::store::private_dir(data_dir)
            .with_context(|| format!("creating data dir {}", data_dir.display()))?;
        let durability = match config.store.durability {
            config::Durability::GroupCommit => Durability::GroupCommit,
            config::Durability::PerRequest => Durability::PerRequest,
            config::Durability::None => Durability::None,
        };
        let store_dir = data_dir.join("store");
        let store = tokio::task::spawn_blocking(move || Store::open(&store_dir, durability))
            .await?
            .context("opening the store")?;
        let o = &config.outbox;
        let policy = RetryPolicy::new(
            o.retry_schedule.clone(),
            o.jitter,
            o.max_attempts,
            o.max_age,
            o.rate_limit_floor,
            o.retry_after_max,
        )
        .context("[outbox] retry policy")?;
        let options = crate::outbox::OutboxOptions {
            lease: o.lease,
            idempotency_ttl: config.intake.idempotency_ttl,
            clock: crate::outbox::Clock::System,
        };
        // Bank webhooks and e-mails retry on their own (Svix-like) schedule; Salesforce on `[outbox]`'s.
        let webhook_policy = crate::relay::bank::webhook_retry_policy(&config.webhooks)
            .context("[webhooks] retry policy")?;
        let policies = std::collections::HashMap::from([
            (DestinationKind::Bank, webhook_policy.clone()),
            (DestinationKind::Email, webhook_policy),
        ]);
        let outbox = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || {
                Outbox::open_with_policies(store, policy, policies, options)
            })
            .await?
            .context("opening the outbox")?
        };
        let mappings = MappingSet::load_dir(&config.mappings.dir).map_err(|problems| {
            let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("invalid mappings:\n{}", lines.join("\n"))
        })?;
        tracing::info!(version = mappings.version(), dir = %config.mappings.dir.display(), "mappings loaded");
        let client = SalesforceClient::new(client_settings(&config))
            .context("Salesforce client settings")?;
        let p = &config.pusher;
        let settings = PusherSettings {
            batch_max: p.batch_max,
            linger: p.linger,
            concurrency: p.concurrency,
            api_usage_slow_pct: f64::from(p.api_usage_slow_pct),
            api_usage_pause_pct: f64::from(p.api_usage_pause_pct),
            request_timeout: config.salesforce.timeout,
            ..PusherSettings::default()
        };
        if config.outbox.lease <= config.salesforce.timeout {
            anyhow::bail!(
                "[outbox] lease_ms must be longer than [salesforce] timeout_ms, or slow sends are sent twice"
            );
        }
        let pusher = SalesforcePusher::new(outbox.clone(), client.clone(), settings)
            .context("[pusher] settings")?;
        let mappings = Arc::new(ArcSwap::from_pointee(mappings));
        let (inbound, vault) = match (InboundSettings::from_config(&config), &config.inbound) {
            (Some(settings), Some(inbound_config)) => {
                let vault = Arc::new(
                    open_vault(inbound_config, &config.store.data_dir)
                        .context("opening the report vault")?,
                );
                let inbound = Inbound::new(
                    settings,
                    store.clone(),
                    outbox.clone(),
                    client.clone(),
                    vault.clone(),
                    mappings.clone(),
                    config.banks.clone(),
                )
                .context("[inbound]")?;
                (Some(inbound), Some(vault))
            }
            _ => {
                tracing::warn!(
                    "no [inbound] section: status changes and reports are not mirrored back to banks"
                );
                (None, None)
            }
        };
        let bank_pusher =
            BankPusher::from_config(outbox.clone(), &config).context("[[banks]] webhooks")?;
        let mailer = EmailPusher::from_config(outbox.clone(), &config.notifications)
            .context("[notifications]")?;
        if mailer.is_none() {
            tracing::warn!("[notifications] disabled: e-mails wait in the outbox");
        }
        Ok(Daemon {
            config,
            store,
            outbox,
            mappings,
            client,
            pusher,
            inbound,
            vault,
            bank_pusher,
            mailer,
            health: Health::default(),
        })
    }

    /// The outbox (for in-process tests and the sandbox).
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Serves on `listener` until `shutdown` fires, then drains and flushes within the grace period.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let Daemon {
            config,
            store,
            outbox,
            mappings,
            client,
            pusher,
            inbound,
            vault,
            bank_pusher,
            mailer,
            health,
        } = self;
        let tracker = TaskTracker::new();
        let workers = CancellationToken::new();
        // Stops the daemon like `shutdown` does, but also when the store stays unwritable (then `run` fails).
        let stopping = shutdown.child_token();
        let store_failed = CancellationToken::new();

        // Workers.
        let paused = pusher.clone();
        health.add_warning(
            "salesforce_api_budget",
            Arc::new(move || {
                if paused.paused() {
                    Err("sending paused: the org's daily API allocation is nearly spent (requests are still accepted and queued)".into())
                } else {
                    Ok(())
                }
            }),
        );
        spawn_worker(&tracker, &health, "salesforce_pusher", |beat| {
            pusher.clone().run(workers.clone(), beat)
        });
        spawn_worker(&tracker, &health, "bank_pusher", |beat| {
            bank_pusher.clone().run(workers.clone(), beat)
        });
        if let Some(mailer) = mailer {
            spawn_worker(&tracker, &health, "email_pusher", |beat| {
                mailer.run(workers.clone(), beat)
            });
        }
        if let Some(inbound) = inbound.clone() {
            let stop = workers.clone();
            spawn_worker(&tracker, &health, "inbound_mirror", |beat| async move {
                inbound.run(stop, beat).await
            });
        }
        tasks::spawn_all(
            &tracker,
            &workers,
            tasks::Context {
                store: store.clone(),
                store_failed: store_failed.clone(),
                outbox: outbox.clone(),
                client: client.clone(),
                health: health.clone(),
                mappings: mappings.clone(),
                mappings_dir: config.mappings.dir.clone(),
                pusher: pusher.clone(),
            },
        );

        // HTTP.
        let intake_state = IntakeState {
            outbox: outbox.clone(),
            mappings: mappings.clone(),
            auth: Authenticator::new(
                client.clone(),
                config.salesforce.org_id.clone(),
                config.banks.clone(),
                config.intake.token_cache,
            ),
            pusher_wakeup: pusher.notifier(),
            max_prefer_wait: config.intake.max_prefer_wait,
            public_url: config.server.public_url().to_string(),
            vault,
            quota: config
                .server
                .bank_quota_per_hour
                .map(|n| Arc::new(BankQuota::new(n))),
        };
        // A request may wait up to max_prefer_wait for Salesforce on top of its own work.
        let request_timeout = config.server.request_timeout + config.intake.max_prefer_wait;
        let api = Router::new()
            .merge(intake::router(intake_state))
            .merge(ops::admin::router(
                outbox.clone(),
                bank_pusher.clone(),
                &config.admin.token,
            ))
            .layer(DefaultBodyLimit::max(
                usize::try_from(config.server.max_body_bytes).unwrap_or(usize::MAX),
            ))
            .layer(TimeoutLayer::with_status_code(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                request_timeout,
            ))
            .layer(ConcurrencyLimitLayer::new(config.server.max_concurrency));
        let mut app = Router::new().merge(api);
        if let Some(inbound) = &inbound {
            app = app.merge(inbound.router());
        }
        let app = app
            .merge(health.router())
            .merge(ops::metrics::router())
            .layer(axum::middleware::from_fn(intake::request_id_middleware));

        let addr = listener.local_addr()?;
        tracing::info!(%addr, data_dir = %config.store.data_dir.display(), "creditlink listening");
        ops::notify_ready();
        ops::notify_status("accepting requests");
        let server_shutdown = stopping.clone();
        let server = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { server_shutdown.cancelled().await });
        let served = tokio::spawn(async move { server.await });

        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = store_failed.cancelled() => stopping.cancel(),
        }
        tracing::info!("shutting down: draining HTTP, stopping workers between tasks");
        health.set_shutting_down();
        ops::notify_stopping();
        let grace = config.server.shutdown_grace;
        let drained = tokio::time::timeout(grace, async {
            let _ = served.await;
            workers.cancel();
            tracker.close();
            tracker.wait().await;
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "grace period over; stopping with work in flight (it is re-sent after restart)"
            );
        }
        if store_failed.is_cancelled() {
            anyhow::bail!(
                "the store stayed unwritable (full disk or I/O errors); exiting so the supervisor restarts creditlink on a reopened store"
            );
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Starts a worker loop with its own heartbeat, registered as a readiness check under `name`.
fn spawn_worker<Fut>(
    tracker: &TaskTracker,
    health: &Health,
    name: &str,
    worker: impl FnOnce(Heartbeat) -> Fut,
) where
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let beat = Heartbeat::new();
    health.add_check(name, beat.check(WORKER_SILENCE));
    tracker.spawn(worker(beat));
}

/// Binds `[server] listen` and runs the daemon until `shutdown` fires (what `creditlink run` does).
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listen = config.server.listen;
    let daemon = Daemon::build(config).await?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    daemon.run(listener, shutdown).await
}

/// The Salesforce client's settings from `[salesforce]`.
pub fn client_settings(config: &Config) -> ClientSettings {
    let sf = &config.salesforce;
    let app = AppCredentials {
        client_id: sf.auth.consumer_key.clone(),
        client_secret: sf.auth.client_secret.clone(),
    };
    let auth = match &sf.auth.flow {
        config::AuthFlow::JwtBearer {
            username,
            audience,
            private_key,
        } => salesforce::AuthFlow::JwtBearer {
            consumer_key: sf.auth.consumer_key.clone(),
            username: username.clone(),
            audience: audience.clone(),
            private_key_pem: private_key.clone(),
        },
        config::AuthFlow::ClientCredentials => salesforce::AuthFlow::ClientCredentials(app.clone()),
    };
    ClientSettings {
        login_url: sf.login_url.clone(),
        api_version: sf.api_version.clone(),
        auth,
        introspection: Some(app),
        timeout: sf.timeout,
    }
}
