//! Wiring: database, migrations, adapters, use cases, workers, HTTP server.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use anyhow::Context as _;
use ephemera_application::commands::EnvironmentCommands;
use ephemera_application::delivery_log::DeliveryQueries;
use ephemera_application::ports::{
    Clock, GitHubObserver, GitHubReader, GitHubReporter, NoObserver, Provisioner, SystemClock,
    WorkObserver, WorkQueue,
};
use ephemera_application::pr_commands::CommandRunner;
use ephemera_application::queries::EnvironmentQueries;
use ephemera_application::reconciler::{Reconciler, ReconcilerConfig};
use ephemera_application::repo_config::{RepoConfigQueries, RepoConfigs};
use ephemera_application::reporting::{ReportDeliverer, ReportingConfig};
use ephemera_application::retention::Retention;
use ephemera_application::sync::GitHubSync;
use ephemera_application::webhooks::IngestDelivery;
use ephemera_application::worker::{Doorbell, WorkerHealth};
use ephemera_github::GitHubApp;
use ephemera_http::{Access, AppState};
use ephemera_persistence::{
    DatabaseConnection, Handover, Reporting, SqlCommandQueue, SqlDeliveryLog,
    SqlDeploymentRepository, SqlEnvironmentRepository, SqlHealthProbe, SqlInstallationRepository,
    SqlLeases, SqlPruner, SqlReportOutbox, SqlWebhookStore, SqlWorkQueue, redact_url,
};
use ephemera_provisioner::{CommandProvisioner, DryRunProvisioner, KubernetesProvisioner};
use secrecy::ExposeSecret;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Settings;
use crate::config::ProvisionerSettings;
use crate::supervision::{Task, supervise};

/// How long a stopping process waits for workers to finish their step
/// before abandoning it (its lease then expires and another replica
/// takes over).
const WORKER_GRACE: Duration = Duration::from_secs(30);

/// Background workers and the TTL sweep, stopped together.
pub struct Workers {
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
    /// Workers that stopped on their own; readiness reads it.
    pub health: WorkerHealth,
    /// Exposed so tests can drive the reconciler step by step.
    pub reconciler: Reconciler,
    pub commands: EnvironmentCommands,
    /// Delivers the GitHub outbox; `None` when reporting is off.
    pub reports: Option<ReportDeliverer>,
    /// Drift repair and missed-delivery recovery; `None` when reporting is off.
    pub sync: Option<GitHubSync>,
    /// Rung when work is committed: this process's workers wake, and on
    /// PostgreSQL so do the other replicas'.
    pub bell: Doorbell,
    /// Repositories' rules, read by the workers and the REST API alike
    /// (one cache of parsed files).
    pub rules: Arc<RepoConfigs>,
    /// Carries out `/preview` commands; `None` when reporting is off.
    pub pr_commands: Option<Arc<CommandRunner>>,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers")
            .field("running", &self.handles.len())
            .finish_non_exhaustive()
    }
}

/// Whether the stores queue reports to GitHub, and how long they hold one
/// of a change under way (`EPHEMERA_GITHUB_REPORT_DELAY`).
fn reporting(on: bool, settings: &Settings) -> Reporting {
    if on {
        Reporting::On {
            hold: settings.workers.report_delay,
        }
    } else {
        Reporting::Off
    }
}

/// What every worker shares: the signal that new work is queued, and the
/// clock the use cases read.
#[derive(Clone)]
pub struct Pulse {
    pub wake: Doorbell,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Pulse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pulse").finish_non_exhaustive()
    }
}

impl Workers {
    /// Builds `settings.workers.count` reconcilers (none when `start` is
    /// false) plus the TTL sweep when a TTL is set, each under
    /// [`supervise`]: one that stops on its own is recorded in `health`.
    pub fn build(
        settings: &Settings,
        db: &DatabaseConnection,
        provisioner: Arc<dyn Provisioner>,
        app: Option<Arc<GitHubApp>>,
        observer: Arc<dyn WorkObserver>,
        Pulse { wake, clock }: Pulse,
        start: bool,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let handover = Handover::over(db);
        let wake = match &handover {
            Some(handover) => wake.announcing(Arc::new(handover.clone())),
            None => wake,
        };
        let github: Option<Arc<dyn GitHubReporter>> =
            app.clone().map(|a| a as Arc<dyn GitHubReporter>);
        let queue: Arc<dyn WorkQueue> = Arc::new(
            SqlWorkQueue::new(db.clone()).reporting(reporting(github.is_some(), settings)),
        );
        let reports = github.map(|github| {
            ReportDeliverer::new(
                Arc::new(SqlReportOutbox::new(db.clone())),
                github,
                clock.clone(),
                ReportingConfig {
                    worker_id: format!(
                        "{}-{}-reports",
                        std::env::var("HOSTNAME").unwrap_or_else(|_| "ephemera".to_owned()),
                        std::process::id()
                    ),
                    lease: Duration::from_secs(60),
                    retry_base: settings.workers.retry_base,
                    retry_max: Duration::from_secs(600),
                    poll: settings.workers.poll,
                    channels: settings.workers.report_via,
                },
            )
        });
        let commands = EnvironmentCommands::new(
            queue.clone(),
            clock.clone(),
            wake.clone(),
            settings.policy.clone(),
        );
        let rules = Arc::new(RepoConfigs::new(
            app.clone().map(|a| a as Arc<dyn GitHubReader>),
            settings.repo_config.clone(),
        ));
        let pr_commands = app.clone().map(|app| {
            Arc::new(CommandRunner::new(
                Arc::new(SqlCommandQueue::new(db.clone())),
                Arc::new(SqlEnvironmentRepository::new(db.clone())),
                app.clone(),
                app,
                commands.clone(),
                rules.clone(),
                clock.clone(),
                format!(
                    "{}-{}-commands",
                    std::env::var("HOSTNAME").unwrap_or_else(|_| "ephemera".to_owned()),
                    std::process::id()
                ),
                Duration::from_secs(60),
            ))
        });
        let sync = app.clone().map(|app| {
            GitHubSync::new(
                app,
                Arc::new(SqlEnvironmentRepository::new(db.clone())),
                Arc::new(SqlDeliveryLog::new(db.clone())),
                Arc::new(SqlWebhookStore::new(db.clone()).reporting(reporting(true, settings))),
                commands.clone(),
                clock.clone(),
            )
            .leased(
                Arc::new(SqlLeases::new(db.clone())),
                format!(
                    "{}-{}",
                    std::env::var("HOSTNAME").unwrap_or_else(|_| "ephemera".to_owned()),
                    std::process::id()
                ),
                // Held across passes; another replica takes over two
                // intervals after the holder stopped renewing it.
                settings.workers.github_sync.saturating_mul(2),
            )
            .budgeted(
                settings.workers.github_sync_budget,
                settings.workers.github_sync,
            )
        });
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "ephemera".to_owned());
        let config = |index: usize| ReconcilerConfig {
            worker_id: format!("{host}-{}-{index}", std::process::id()),
            lease: settings.workers.lease,
            max_attempts: settings.workers.max_attempts,
            retry_base: settings.workers.retry_base,
            retry_max: settings.workers.retry_max,
            poll: settings.workers.poll,
            preview_url: settings.preview_url.clone(),
        };
        let reconciler =
            Reconciler::new(queue.clone(), provisioner.clone(), clock.clone(), config(0))
                .observed_by(observer.clone())
                .with_rules(rules.clone());
        let mut tasks: Vec<Task> = Vec::new();
        if let Some(handover) = handover {
            // Announcing is needed even without workers (`serve
            // --no-workers` applies deliveries); hearing only with them.
            let (bell, stopped, listen) = (wake.clone(), stopped.clone(), start);
            tasks.push(Task::new("handover", async move {
                handover.run(bell, listen, stopped).await;
            }));
        }
        if start {
            for index in 0..settings.workers.count {
                let worker = Reconciler::new(
                    queue.clone(),
                    provisioner.clone(),
                    clock.clone(),
                    config(index),
                )
                .observed_by(observer.clone())
                .with_rules(rules.clone());
                let (wake, stopped) = (wake.clone(), stopped.clone());
                tasks.push(Task::new(format!("reconciler-{index}"), async move {
                    worker.run(wake, stopped).await;
                }));
            }
            if let Some(reports) = reports.clone().filter(|_| settings.workers.count > 0) {
                let (wake, stopped) = (wake.clone(), stopped.clone());
                tasks.push(Task::new("reports", async move {
                    reports.run(wake, stopped).await;
                }));
            }
            if let Some(sync) = sync.clone().filter(|_| settings.workers.count > 0) {
                let (stopped, every) = (stopped.clone(), settings.workers.github_sync);
                tasks.push(Task::new("github-sync", async move {
                    sync.run(every, stopped).await;
                }));
            }
            let retention = Retention::new(
                Arc::new(SqlPruner::new(db.clone())),
                clock.clone(),
                settings.workers.retention.clone(),
                observer.clone(),
            );
            let every = settings.workers.retention_every;
            tasks.push(Task::new("retention", {
                let stopped = stopped.clone();
                async move { retention.run(every, stopped).await }
            }));
            if let Some(runner) = pr_commands.clone().filter(|_| settings.workers.count > 0) {
                let (wake, stopped, poll) = (wake.clone(), stopped.clone(), settings.workers.poll);
                tasks.push(Task::new("pr-commands", async move {
                    runner.run(wake, poll, stopped).await;
                }));
            }
            // Always on: repositories may set their own TTL.
            {
                let (commands, stopped) = (commands.clone(), stopped.clone());
                let ttl = settings.workers.environment_ttl;
                tasks.push(Task::new("ttl-sweep", async move {
                    commands.sweep_idle(ttl, stopped).await;
                }));
            }
            tracing::info!(
                workers = settings.workers.count,
                provisioner = provisioner.name(),
                ttl = ?settings.workers.environment_ttl,
                "workers started"
            );
        }
        let health = WorkerHealth::new();
        let handles = supervise(tasks, &stopped, &health);
        Self {
            stop,
            handles,
            health,
            bell: wake,
            reconciler,
            commands,
            reports,
            sync,
            rules,
            pr_commands,
        }
    }

    /// Asks every worker to stop after its current step and waits for them
    /// (at most the grace period).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let all = futures_join(self.handles);
        if tokio::time::timeout(WORKER_GRACE, all).await.is_err() {
            tracing::warn!("workers still busy after {WORKER_GRACE:?}; their leases will expire");
        }
    }
}

async fn futures_join(handles: Vec<JoinHandle<()>>) {
    for handle in handles {
        let _ = handle.await;
    }
}

/// The GitHub App client when reporting is configured (and a line saying
/// so); `None`, said once, when it is not. A malformed key stops start-up
/// with one clear line. `observer` hears of every answer from GitHub.
pub fn github_app(
    settings: &Settings,
    observer: Arc<dyn GitHubObserver>,
) -> anyhow::Result<Option<Arc<GitHubApp>>> {
    let Some(config) = &settings.github else {
        tracing::info!(
            "GitHub reporting is off: set GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY (or _PATH) to turn it on"
        );
        return Ok(None);
    };
    let app = GitHubApp::new(
        config.app_id,
        config.private_key.expose_secret().as_bytes(),
        &config.api_url,
    )?
    .observed_by(observer);
    tracing::info!(app_id = config.app_id, api = %config.api_url, "GitHub reporting is on");
    Ok(Some(Arc::new(app)))
}

/// The provisioner `EPHEMERA_PROVISIONER` names, connected.
pub async fn provisioner(settings: &Settings) -> anyhow::Result<Arc<dyn Provisioner>> {
    Ok(match &settings.provisioner {
        ProvisionerSettings::DryRun => Arc::new(DryRunProvisioner),
        ProvisionerSettings::Command(config) => {
            let provisioner = CommandProvisioner::new(config.clone());
            if !provisioner.can_sleep() {
                // Said once here; each sleep asked for fails with the same
                // explanation in the environment's error.
                tracing::warn!(
                    "sleeping previews are off: EPHEMERA_STOP_COMMAND and EPHEMERA_START_COMMAND are not set"
                );
            }
            Arc::new(provisioner)
        }
        ProvisionerSettings::Kubernetes(config) => Arc::new(
            KubernetesProvisioner::connect(config.clone())
                .await
                .map_err(|e| anyhow::anyhow!("EPHEMERA_PROVISIONER=kubernetes: {e}"))?,
        ),
    })
}

/// A built, not yet running, service: tests bind port 0 and read `port`.
pub struct Application {
    port: u16,
    server: Server,
    /// `/metrics` on `EPHEMERA_METRICS_LISTEN`, when set.
    metrics: Option<(u16, Server)>,
    db: DatabaseConnection,
    workers: Workers,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Connects, applies pending migrations under the migration lock, binds
    /// the listener, starts the workers (unless `with_workers` is false) and
    /// builds the server. Any failure here means nothing is served; the
    /// error names the variable at fault.
    pub async fn build(settings: &Settings, with_workers: bool) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, with_workers, Arc::new(SystemClock)).await
    }

    /// [`Application::build`] with the clock every use case reads (tests
    /// move it forward instead of sleeping past a backoff).
    pub async fn build_with_clock(
        settings: &Settings,
        with_workers: bool,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        settings.check_serve()?;
        let db = open_database(&settings.database_url).await?;
        migrate(&db).await?;
        // Reads (REST lists, the dashboard, metrics) on their own
        // connections where that helps (SQLite), never queued behind a
        // write.
        let reads = ephemera_persistence::connect_reader(&settings.database_url, &db)
            .await
            .with_context(|| {
                format!(
                    "DATABASE_URL: cannot open readers on {}",
                    redact_url(&settings.database_url)
                )
            })?;

        let listener = TcpListener::bind(settings.listen)
            .with_context(|| format!("EPHEMERA_LISTEN: cannot listen on {}", settings.listen))?;
        let port = listener
            .local_addr()
            .context("reading the bound address")?
            .port();
        let metrics_listener = settings
            .metrics_listen
            .map(|addr| {
                TcpListener::bind(addr)
                    .with_context(|| format!("EPHEMERA_METRICS_LISTEN: cannot listen on {addr}"))
            })
            .transpose()?;
        let metrics_port = metrics_listener
            .as_ref()
            .map(|l| l.local_addr().map(|a| a.port()))
            .transpose()
            .context("reading the bound metrics address")?;

        let metrics = Arc::new(ephemera_http::Metrics::new().context("registering metrics")?);
        let app = github_app(settings, metrics.clone())?;
        let provisioner = provisioner(settings).await?;
        let workers = Workers::build(
            settings,
            &db,
            provisioner,
            app,
            metrics.clone(),
            Pulse {
                wake: Doorbell::new(),
                clock: clock.clone(),
            },
            with_workers,
        );
        let state = AppState {
            queries: EnvironmentQueries::new(
                Arc::new(SqlEnvironmentRepository::new(reads.clone())),
                Arc::new(SqlDeploymentRepository::new(reads.clone())),
            ),
            deliveries: DeliveryQueries::new(Arc::new(SqlDeliveryLog::new(reads.clone()))),
            ingest: IngestDelivery::new(
                Arc::new(
                    SqlWebhookStore::new(db.clone())
                        .reporting(reporting(workers.reports.is_some(), settings)),
                ),
                clock,
                settings.policy.clone(),
            )
            .serving(settings.allowed_owners.clone())
            .waking(workers.bell.clone()),
            commands: workers.commands.clone(),
            repo_configs: RepoConfigQueries::new(
                Arc::new(SqlInstallationRepository::new(db.clone())),
                workers.rules.clone(),
            ),
            health: Arc::new(SqlHealthProbe::new(db.clone())),
            workers: workers.health.clone(),
            webhook: settings.webhook.clone(),
            access: Access {
                token: settings.api_token.clone(),
                anonymous_reads: settings.reads_are_anonymous(),
            },
            metrics,
            stats: Arc::new(SqlHealthProbe::new(reads.clone())),
        };
        if settings.webhook.secret.is_none() {
            tracing::warn!(
                "GITHUB_WEBHOOK_SECRET is not set: the webhook endpoint answers 503 until it is"
            );
        }
        if settings.anonymous_reads {
            tracing::warn!(
                "EPHEMERA_ANONYMOUS_READS=true: anyone reaching the listener can read environments, deployment logs, deliveries and metrics"
            );
        } else if settings.api_token.is_none() {
            tracing::info!(
                "EPHEMERA_API_TOKEN is not set: reads are open on this loopback address and REST writes answer 401"
            );
        }
        let mut dashboard = dashboard_state(settings, &state);
        dashboard.sync = workers.sync.clone();
        let pages: ephemera_http::ExtraRoutes =
            Arc::new(move |cfg| ephemera_web::routes(cfg, dashboard.clone()));
        let servers = ephemera_http::serve(listener, metrics_listener, state, Some(pages))
            .context("starting the HTTP server")?;
        tracing::info!(
            address = %format!("http://{}:{port}", settings.listen.ip()),
            database = %redact_url(&settings.database_url),
            "ephemera is serving"
        );
        let metrics = match (metrics_port, servers.metrics, settings.metrics_listen) {
            (Some(metrics_port), Some(server), Some(addr)) => {
                tracing::info!(
                    address = %format!("http://{}:{metrics_port}/metrics", addr.ip()),
                    "metrics are served on their own listener, without a token"
                );
                Some((metrics_port, server))
            }
            _ => None,
        };
        Ok(Self {
            port,
            server: servers.api,
            metrics,
            db,
            workers,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the metrics listener, when `EPHEMERA_METRICS_LISTEN` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// The reconciler, for tests that drain work step by step.
    pub fn reconciler(&self) -> Reconciler {
        self.workers.reconciler.clone()
    }

    /// The GitHub outbox deliverer, for tests that drain it step by step.
    pub fn reports(&self) -> Option<ReportDeliverer> {
        self.workers.reports.clone()
    }

    /// Drift repair, for tests that run it by hand.
    pub fn sync(&self) -> Option<GitHubSync> {
        self.workers.sync.clone()
    }

    /// The `/preview` command worker, when GitHub is configured.
    pub fn pr_commands(&self) -> Option<Arc<CommandRunner>> {
        self.workers.pr_commands.clone()
    }

    /// Which background workers stopped on their own (readiness reads it).
    pub fn worker_health(&self) -> WorkerHealth {
        self.workers.health.clone()
    }

    /// The operator commands (redeploy, destroy, TTL sweep).
    pub fn commands(&self) -> EnvironmentCommands {
        self.workers.commands.clone()
    }

    /// Serves until SIGTERM or ctrl-c, then drains requests, stops the
    /// workers and closes the database pool.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let metrics = self.metrics.map(|(_, server)| {
            let handle = server.handle();
            (handle, tokio::spawn(server))
        });
        self.server.await.context("serving HTTP")?;
        if let Some((handle, task)) = metrics {
            handle.stop(true).await;
            let _ = task.await;
        }
        self.workers.shutdown().await;
        self.db.close().await.context("closing the database")?;
        tracing::info!("ephemera stopped");
        Ok(())
    }
}

/// `ephemera worker`: workers and the TTL sweep without HTTP, until
/// SIGTERM or ctrl-c, or until one of them stops on its own (then it exits
/// non-zero).
pub async fn run_workers(settings: &Settings) -> anyhow::Result<()> {
    let db = open_database(&settings.database_url).await?;
    migrate(&db).await?;
    let app = github_app(settings, Arc::new(NoObserver))?;
    let provisioner = provisioner(settings).await?;
    let workers = Workers::build(
        settings,
        &db,
        provisioner,
        app,
        Arc::new(NoObserver),
        Pulse {
            wake: Doorbell::new(),
            clock: Arc::new(SystemClock),
        },
        true,
    );
    let health = workers.health.clone();
    let stopped = tokio::select! {
        () = shutdown_signal() => None,
        name = health.first_stop() => Some(name),
    };
    tracing::info!("stopping workers");
    workers.shutdown().await;
    db.close().await.context("closing the database")?;
    match stopped {
        // Without HTTP there is no readiness to fail: exit, and let the
        // supervisor (Kubernetes, systemd) start a fresh process.
        Some(name) => anyhow::bail!("background worker {name} stopped; see the log above"),
        None => Ok(()),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    let applied = ephemera_persistence::migrate(db)
        .await
        .context("applying database migrations")?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "applied pending migrations");
    }
    Ok(())
}

/// Connects to `DATABASE_URL`; the error says so in one line.
pub async fn open_database(url: &str) -> anyhow::Result<DatabaseConnection> {
    ephemera_persistence::connect(url)
        .await
        .with_context(|| format!("DATABASE_URL: cannot use {}", redact_url(url)))
}

/// The dashboard's state: its queries, commands and sign-in.
fn dashboard_state(settings: &Settings, state: &AppState) -> ephemera_web::WebState {
    let d = &settings.dashboard;
    let public_url = d
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", settings.listen));
    let sign_in = d
        .oauth
        .as_ref()
        .map(|(id, secret)| ephemera_web::SignInSettings {
            github: Arc::new(ephemera_github::GitHubOAuth::new(
                id.clone(),
                secret.clone(),
                &d.web_url,
                &d.api_url,
            )),
            public_url: public_url.clone(),
        });
    let session_key = match &d.session_key {
        Some(key) => key.expose_secret().as_bytes().to_vec(),
        None => {
            if sign_in.is_some() {
                tracing::warn!(
                    "EPHEMERA_SESSION_KEY is not set: a random key signs the dashboard's sessions, so they end when ephemera restarts and are not shared by replicas"
                );
            }
            (0..4)
                .flat_map(|_| *uuid::Uuid::new_v4().as_bytes())
                .collect()
        }
    };
    ephemera_web::WebState {
        queries: state.queries.clone(),
        deliveries: state.deliveries.clone(),
        repo_configs: state.repo_configs.clone(),
        commands: state.commands.clone(),
        stats: state.stats.clone(),
        open: settings.reads_are_anonymous(),
        sign_in,
        session_key: Arc::new(session_key),
        secure_cookies: public_url.starts_with("https://"),
        reach: Arc::default(),
        sync: None,
    }
}
