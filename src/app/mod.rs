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

mod serve;
mod tasks;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::config::{self, Config};
use crate::inbound::{Inbound, InboundSettings, open_vault};
use crate::intake::{self, Authenticator, BankQuota, IntakeState};
use crate::lifecycle::FailureNotice;
use crate::mapping::MappingSet;
use crate::ops::{self, Health, Heartbeat};
use crate::outbox::{DestinationKind, Outbox, RetryPolicy};
use crate::records::Gatekeeper;
use crate::relay::bank::BankPusher;
use crate::relay::email::EmailPusher;
use crate::relay::{PusherSettings, SalesforcePusher};
use crate::salesforce::{self, AppCredentials, ClientSettings, SalesforceClient};
use crate::store::{Durability, Store};
use crate::vault::Vault;

/// A worker silent for longer than this makes `/readyz` fail (workers beat every loop, idle or not).
const WORKER_SILENCE: Duration = Duration::from_secs(30);

/// How long one upload request may take (streaming up to `[uploads] max_bytes` to disk).
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Connections the admin listener serves at once (operators and the `creditlink outbox` CLI).
const ADMIN_CONNECTIONS: usize = 64;

/// The daemon's two listeners: the bank API (with the Outbound Message listener and the ops endpoints) and
/// the admin API (with the ops endpoints).
pub struct Listeners {
    pub api: TcpListener,
    pub admin: TcpListener,
}

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
    /// The stale-record gatekeeper (on demand always; on a schedule with `[records]`).
    gatekeeper: Gatekeeper,
    health: Health,
}

/// Opens the configured backend: the embedded sled store under `data_dir`, or PostgreSQL (schema
/// migrations applied here, before anything is accepted).
async fn open_store(
    config: &config::StoreConfig,
    data_dir: &std::path::Path,
    durability: Durability,
) -> anyhow::Result<Store> {
    match &config.backend {
        config::StoreBackend::Sled => {
            let store_dir = data_dir.join("store");
            Ok(
                tokio::task::spawn_blocking(move || Store::open(&store_dir, durability))
                    .await?
                    .context("opening the store")?,
            )
        }
        config::StoreBackend::Postgres { url } => Store::connect_postgres(url)
            .await
            .context("connecting to PostgreSQL ([store.postgres] url)"),
    }
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
        let store = open_store(&config.store, data_dir, durability).await?;
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
        pusher.set_failure_notice(FailureNotice::new(
            outbox.clone(),
            mappings.clone(),
            config.banks.clone(),
            config.notifications.bureau_contacts.clone(),
            config.server.public_url().as_str(),
        ));
        let (inbound, vault) = match (InboundSettings::from_config(&config), &config.inbound) {
            (Some(settings), Some(inbound_config)) => {
                let vault = Arc::new(
                    open_vault(inbound_config, &config.store.data_dir, &store)
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
        let gatekeeper = Gatekeeper::new(
            &store,
            outbox.clone(),
            client.clone(),
            config.records.clone().unwrap_or_default(),
            config.banks.clone(),
        )
        .context("[records] gatekeeper")?;
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
            gatekeeper,
            health: Health::default(),
        })
    }

    /// The outbox (for in-process tests and the sandbox).
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The stale-record gatekeeper (for in-process tests and the sandbox).
    pub fn gatekeeper(&self) -> &Gatekeeper {
        &self.gatekeeper
    }

    /// Serves the bank API on `listener` and the admin API on `[admin] listen` until `shutdown` fires, then
    /// drains and flushes within the grace period.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let admin_listen = self.config.admin.listen;
        let admin = TcpListener::bind(admin_listen)
            .await
            .with_context(|| format!("binding the admin listener {admin_listen}"))?;
        self.run_with(
            Listeners {
                api: listener,
                admin,
            },
            shutdown,
        )
        .await
    }

    /// [`Daemon::run`] on listeners bound by the caller (the sandbox binds ephemeral ports).
    pub async fn run_with(
        self,
        listeners: Listeners,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let Listeners {
            api: listener,
            admin: admin_listener,
        } = listeners;
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
            gatekeeper,
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
        let reachable = pusher.clone();
        health.add_warning(
            "salesforce_reachable",
            Arc::new(move || {
                if reachable.unreachable() {
                    Err("Salesforce is failing whole calls: the backlog is held and one message probes the org (requests are still accepted and queued)".into())
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
        spawn_shared_wakeups(
            &tracker,
            &workers,
            &store,
            &pusher,
            &bank_pusher,
            mailer.as_ref(),
        );
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
        if let Some(interval) = config.records.as_ref().and_then(|r| r.gatekeeper_interval) {
            tracker.spawn(gatekeeper.clone().run_scheduled(
                store.clone(),
                interval,
                workers.clone(),
            ));
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
                retention: crate::outbox::RetentionPolicy {
                    payload: config.store.payload_retention,
                    history: config.store.history_retention,
                    keep_fields: Vec::new(),
                },
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
            views: inbound.as_ref().map(|i| i.state().clone()),
        };
        // A request may wait up to max_prefer_wait for Salesforce on top of its own work.
        let request_timeout = config.server.request_timeout + config.intake.max_prefer_wait;
        let body_budget = intake::BodyBudget::new(
            config.server.max_body_memory_bytes,
            config.server.max_body_bytes,
        );
        let feeds = crate::feeds::assemble(
            &config,
            &store,
            mappings.clone(),
            &client,
            intake_state.auth.clone(),
            outbox.clone(),
            gatekeeper.clone(),
        )
        .context("[uploads] data feeds")?;
        let ui = crate::ui::UiState::from_config(
            &config,
            intake_state.clone(),
            bank_pusher.clone(),
            client.clone(),
        )
        .map(|ui| ui.with_records(feeds.clone(), gatekeeper.clone()));
        let api = limit_api(
            intake::router(intake_state),
            &config.server,
            request_timeout,
        )
        .layer(axum::Extension(body_budget.clone()));
        let mut app = Router::new().merge(api);
        if let Some(ui) = ui {
            // The widget posts report requests too: they share the bank API's body memory budget.
            app = app.merge(crate::ui::router(ui).layer(axum::Extension(body_budget)));
        }
        // Uploads stream up to `[uploads] max_bytes` to disk: their own, longer timeout.
        match feeds {
            Some(feeds) => {
                spawn_worker(&tracker, &health, "upload_worker", |beat| {
                    crate::feeds::run(feeds.clone(), workers.clone(), beat)
                });
                app = app.merge(
                    crate::feeds::router(feeds).layer(TimeoutLayer::with_status_code(
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        UPLOAD_TIMEOUT,
                    )),
                );
            }
            None => app = app.merge(crate::feeds::router_unavailable()),
        }
        if let Some(inbound) = &inbound {
            app = app.merge(inbound.router());
        }
        let ops = Router::new()
            .merge(health.router())
            .merge(ops::metrics::router())
            .method_not_allowed_fallback(intake::api::method_not_allowed);
        // Unknown paths answer the same problem document as unknown resources, never an empty 404.
        let app = app
            .merge(ops.clone())
            .fallback(not_found)
            .layer(axum::middleware::from_fn(intake::request_id_middleware));
        let admin_app = Router::new()
            .merge(ops::admin::router(
                outbox.clone(),
                bank_pusher.clone(),
                ops::admin::AdminSettings {
                    token: &config.admin.token,
                    bank_codes: config.banks.iter().map(|b| b.code.clone()).collect(),
                    rate_per_second: config.admin.rate_per_second,
                    gatekeeper: Some(gatekeeper.clone()),
                },
            ))
            .layer(TimeoutLayer::with_status_code(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                config.server.request_timeout,
            ))
            .merge(ops)
            .fallback(not_found)
            .layer(axum::middleware::from_fn(intake::request_id_middleware));

        let addr = listener.local_addr()?;
        let admin_addr = admin_listener.local_addr()?;
        let max_connections = serve::fd_budget(config.server.max_connections);
        if max_connections < config.server.max_connections {
            tracing::warn!(
                configured = config.server.max_connections,
                max_connections,
                "[server] max_connections lowered to fit the file-descriptor limit (raise LimitNOFILE)"
            );
        }
        tracing::info!(%addr, %admin_addr, max_connections, data_dir = %config.store.data_dir.display(),
            "creditlink listening");
        ops::notify_ready();
        ops::notify_status("accepting requests");
        let limits = serve::Limits {
            header_read_timeout: config.server.header_read_timeout,
            max_connections,
        };
        let admin_limits = serve::Limits {
            header_read_timeout: config.server.header_read_timeout,
            max_connections: ADMIN_CONNECTIONS,
        };
        let served = tokio::spawn(serve::serve(listener, app, limits, stopping.clone()));
        let admin_served = tokio::spawn(serve::serve(
            admin_listener,
            admin_app,
            admin_limits,
            stopping.clone(),
        ));

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
            let _ = admin_served.await;
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

/// The answer to a path no route serves: the problem document of an unknown resource.
async fn not_found() -> intake::ApiError {
    intake::ApiError::NotFound
}

/// The bank API's limits: the request timeout (waiting for a slot included) around one in-flight cap shared by
/// every route. `Router::layer` wraps each route separately, so a per-layer limit (`ConcurrencyLimitLayer`)
/// would give each route its own cap; the global layer shares one semaphore.
fn limit_api(api: Router, server: &config::ServerConfig, request_timeout: Duration) -> Router {
    let slots = Arc::new(tokio::sync::Semaphore::new(server.max_concurrency));
    api.layer(DefaultBodyLimit::max(
        usize::try_from(server.max_body_bytes).unwrap_or(usize::MAX),
    ))
    .layer(GlobalConcurrencyLimitLayer::with_semaphore(slots))
    .layer(TimeoutLayer::with_status_code(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        request_timeout,
    ))
}

/// Starts a worker loop with its own heartbeat, registered as a readiness check under `name`.
/// With a store other daemons share: wakes this daemon's pusher of each kind another daemon enqueued
/// for (or made due by an admin retry), instead of waiting for its next poll.
fn spawn_shared_wakeups(
    tracker: &TaskTracker,
    stop: &CancellationToken,
    store: &Store,
    pusher: &SalesforcePusher,
    bank_pusher: &crate::relay::bank::BankPusher,
    mailer: Option<&EmailPusher>,
) {
    let Some(mut woken) = store.enqueued() else {
        return;
    };
    let (salesforce, bank, mailer, stop) = (
        pusher.notifier(),
        bank_pusher.clone(),
        mailer.cloned(),
        stop.clone(),
    );
    tracker.spawn(async move {
        loop {
            let kind = tokio::select! {
                kind = woken.recv() => kind,
                () = stop.cancelled() => return,
            };
            let wake_all = matches!(
                kind,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_))
            );
            if wake_all || matches!(kind, Ok(DestinationKind::Salesforce)) {
                salesforce.notify_one();
            }
            if wake_all || matches!(kind, Ok(DestinationKind::Bank)) {
                bank.wake();
            }
            if (wake_all || matches!(kind, Ok(DestinationKind::Email)))
                && let Some(mailer) = &mailer
            {
                mailer.wake();
            }
            if matches!(kind, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                return;
            }
        }
    });
}

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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use axum::Router;
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::get;
    use tokio::sync::Notify;
    use tower::ServiceExt;

    use super::limit_api;
    use crate::config::ServerConfig;

    fn server(max_concurrency: usize) -> ServerConfig {
        ServerConfig {
            listen: "127.0.0.1:0".parse().expect("literal"),
            public_url: None,
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(3600),
            max_concurrency,
            max_body_memory_bytes: 64 * 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            max_connections: 100,
            shutdown_grace: Duration::from_secs(1),
            bank_quota_per_hour: None,
        }
    }

    fn get_request(path: &str) -> Request<Body> {
        Request::get(path).body(Body::empty()).expect("request")
    }

    #[tokio::test]
    async fn max_concurrency_is_one_cap_for_every_route() {
        let entered = Arc::new(Notify::new());
        let release = Arc::new(Notify::new());
        let (e, r) = (entered.clone(), release.clone());
        let routes = Router::new()
            .route(
                "/slow",
                get(move || async move {
                    e.notify_one();
                    r.notified().await;
                    "slow"
                }),
            )
            .route("/fast", get(|| async { "fast" }));
        let api = limit_api(routes, &server(1), Duration::from_secs(3600));

        let slow = tokio::spawn(api.clone().oneshot(get_request("/slow")));
        entered.notified().await;
        // The one slot is taken by /slow: /fast, another route, must wait for it.
        let mut fast = Box::pin(api.clone().oneshot(get_request("/fast")));
        assert!(
            futures::poll!(&mut fast).is_pending(),
            "/fast got its own slot: the cap is per route"
        );

        release.notify_one();
        assert_eq!(slow.await.expect("join").expect("slow").status(), 200);
        assert_eq!(fast.await.expect("fast").status(), 200);
    }
}
