//! Healing what webhooks missed: a periodic sync lists each repository's
//! open PRs and compares them with the live environments (closed → destroy,
//! newer head → through the deploy policy, repository gone → destroy), and
//! asks GitHub to redeliver failed webhook deliveries ephemera did not apply
//! — within GitHub's 3-day window, an outage of ephemera heals itself.

use std::sync::Arc;
use std::time::Duration;

use ephemera_domain::InstallationId;
use thiserror::Error;
use tokio::sync::watch;

use crate::commands::{CommandError, EnvironmentCommands};
use crate::ports::{Clock, DeliveryLog, EnvironmentRepository, GitHubReader, Leases, WebhookStore};
use crate::worker::{self, Next};

mod drift;
mod redelivery;

pub use redelivery::{MAX_REQUESTS, Redelivered};

/// Below this many requests left in GitHub's rate-limit window, drift
/// repair waits for the next pass: reports to GitHub matter more.
pub const RATE_FLOOR: u64 = 500;

/// The lease that keeps the passes on one replica.
const SYNC_LEASE: &str = "github-sync";

#[derive(Clone)]
struct SyncLease {
    leases: Arc<dyn Leases>,
    owner: String,
    ttl: Duration,
}

#[derive(Debug, Error)]
pub enum SyncError {
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// What one pass changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncSummary {
    pub checked: usize,
    pub destroyed: usize,
    pub redeployed: usize,
    /// New heads the deploy policy held back (an unvouched fork commit, a
    /// suspended installation).
    pub held: usize,
    pub redelivered: Vec<String>,
    /// Another replica holds the sync lease: this one did nothing.
    pub skipped: bool,
    /// The pass stopped early: GitHub's rate limit was below the floor.
    pub rate_limited: bool,
    /// The pass spent its share of the hourly budget; the next one goes on
    /// from where it stopped.
    pub budget_spent: bool,
    /// Requests the pass made that count against the rate limit (a `304`
    /// does not).
    pub requests: u32,
}

#[derive(Clone)]
pub struct GitHubSync {
    github: Arc<dyn GitHubReader>,
    environments: Arc<dyn EnvironmentRepository>,
    deliveries: Arc<dyn DeliveryLog>,
    store: Arc<dyn WebhookStore>,
    commands: EnvironmentCommands,
    clock: Arc<dyn Clock>,
    lease: Option<SyncLease>,
    /// When GitHub's failed deliveries were last read back.
    last_listed: Arc<std::sync::Mutex<Option<chrono::DateTime<chrono::Utc>>>>,
    /// The ETag of each repository's last open-PR listing acted on.
    etags: Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>,
    /// Counted requests one pass may make listing PRs (`None`: no cap).
    per_pass: Option<u32>,
    /// Where the last pass stopped when it spent its budget.
    resume_at: Arc<std::sync::Mutex<Option<RepositoryKey>>>,
}

/// A repository as drift repair groups environments: its installation and
/// GitHub's id (or its name when the id is not known).
type RepositoryKey = (InstallationId, String);

impl std::fmt::Debug for GitHubSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubSync").finish_non_exhaustive()
    }
}

fn unexpected(err: impl std::error::Error + Send + Sync + 'static) -> SyncError {
    SyncError::Unexpected(anyhow::Error::new(err))
}

fn command(err: CommandError) -> Option<SyncError> {
    match err {
        // Someone else destroyed or moved it meanwhile: nothing to repair.
        CommandError::Conflict(_) | CommandError::NotFound(_) => None,
        other => Some(unexpected(other)),
    }
}

impl GitHubSync {
    pub fn new(
        github: Arc<dyn GitHubReader>,
        environments: Arc<dyn EnvironmentRepository>,
        deliveries: Arc<dyn DeliveryLog>,
        store: Arc<dyn WebhookStore>,
        commands: EnvironmentCommands,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            github,
            environments,
            deliveries,
            store,
            commands,
            clock,
            lease: None,
            last_listed: Arc::default(),
            etags: Arc::default(),
            per_pass: None,
            resume_at: Arc::default(),
        }
    }

    /// Caps the requests of drift repair to `per_hour` (counted ones: a
    /// `304` is free), spread over passes `every` apart. A pass that spends
    /// its share stops, and the next one starts where it stopped, so every
    /// repository is still read, only less often.
    pub fn budgeted(mut self, per_hour: u32, every: Duration) -> Self {
        let passes = (3600.0 / every.as_secs_f64().max(1.0)).max(1.0);
        self.per_pass = Some(((f64::from(per_hour) / passes).floor() as u32).max(1));
        self
    }

    /// Runs the passes only on the replica holding the sync lease, so N
    /// replicas cost GitHub what one does.
    pub fn leased(mut self, leases: Arc<dyn Leases>, owner: String, ttl: Duration) -> Self {
        self.lease = Some(SyncLease { leases, owner, ttl });
        self
    }

    /// Runs both passes every `every` until `stop` turns true.
    pub async fn run(&self, every: Duration, stop: watch::Receiver<bool>) {
        worker::run_until_stopped(None, stop, || async {
            match self.run_once().await {
                Ok(summary) => tracing::info!(?summary, "GitHub sync done"),
                Err(err) => tracing::warn!(error = %err, "GitHub sync failed"),
            }
            Next::After(every)
        })
        .await;
    }

    /// Both passes; for the periodic task. Skipped (`summary.skipped`)
    /// while another replica holds the lease.
    pub async fn run_once(&self) -> Result<SyncSummary, SyncError> {
        if let Some(lease) = &self.lease
            && !lease
                .leases
                .try_acquire(SYNC_LEASE, &lease.owner, lease.ttl, self.clock.now())
                .await
                .map_err(unexpected)?
        {
            return Ok(SyncSummary {
                skipped: true,
                ..SyncSummary::default()
            });
        }
        let mut summary = self.sync_pull_requests().await?;
        summary.redelivered = self.redeliver_missed().await?;
        Ok(summary)
    }
}
