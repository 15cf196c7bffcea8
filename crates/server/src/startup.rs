//! Wiring: database, migrations, adapters, use cases, HTTP server.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use anyhow::Context as _;
use ephemera_application::delivery_log::DeliveryQueries;
use ephemera_application::ports::SystemClock;
use ephemera_application::queries::EnvironmentQueries;
use ephemera_application::webhooks::IngestDelivery;
use ephemera_http::AppState;
use ephemera_persistence::{
    DatabaseConnection, SqlDeliveryLog, SqlDeploymentRepository, SqlEnvironmentRepository,
    SqlHealthProbe, SqlWebhookStore, redact_url,
};

use crate::Settings;

/// A built, not yet running, service: tests bind port 0 and read `port`.
pub struct Application {
    port: u16,
    server: Server,
    db: DatabaseConnection,
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
    /// the listener and builds the server. Any failure here means nothing is
    /// served; the error names the variable at fault.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let db = open_database(&settings.database_url).await?;
        let applied = ephemera_persistence::migrate(&db)
            .await
            .context("applying database migrations")?;
        if !applied.is_empty() {
            tracing::info!(migrations = ?applied, "applied pending migrations");
        }

        let listener = TcpListener::bind(settings.listen)
            .with_context(|| format!("EPHEMERA_LISTEN: cannot listen on {}", settings.listen))?;
        let port = listener
            .local_addr()
            .context("reading the bound address")?
            .port();

        let state = AppState {
            queries: EnvironmentQueries::new(
                Arc::new(SqlEnvironmentRepository::new(db.clone())),
                Arc::new(SqlDeploymentRepository::new(db.clone())),
            ),
            deliveries: DeliveryQueries::new(Arc::new(SqlDeliveryLog::new(db.clone()))),
            ingest: IngestDelivery::new(
                Arc::new(SqlWebhookStore::new(db.clone())),
                Arc::new(SystemClock),
                settings.policy.clone(),
            ),
            health: Arc::new(SqlHealthProbe::new(db.clone())),
            webhook: settings.webhook.clone(),
        };
        if settings.webhook.secret.is_none() {
            tracing::warn!(
                "GITHUB_WEBHOOK_SECRET is not set: the webhook endpoint answers 503 until it is"
            );
        }
        let server = ephemera_http::serve(listener, state).context("starting the HTTP server")?;
        tracing::info!(
            address = %format!("http://{}:{port}", settings.listen.ip()),
            database = %redact_url(&settings.database_url),
            "ephemera is serving"
        );
        Ok(Self { port, server, db })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM or ctrl-c, then drains requests and closes the
    /// database pool.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.server.await.context("serving HTTP")?;
        self.db.close().await.context("closing the database")?;
        tracing::info!("ephemera stopped");
        Ok(())
    }
}

/// Connects to `DATABASE_URL`; the error says so in one line.
pub async fn open_database(url: &str) -> anyhow::Result<DatabaseConnection> {
    ephemera_persistence::connect(url)
        .await
        .with_context(|| format!("DATABASE_URL: cannot use {}", redact_url(url)))
}
