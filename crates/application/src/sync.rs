//! Healing what webhooks missed: a periodic sync lists each repository's
//! open PRs and compares them with the live environments (closed → destroy,
//! newer head → through the deploy policy, repository gone → destroy), and
//! asks GitHub to redeliver failed webhook deliveries ephemera did not apply
//! — within GitHub's 3-day window, an outage of ephemera heals itself.

use std::sync::Arc;
use std::time::Duration;

use ephemera_domain::{DeliveryId, DeliveryOutcome, Environment, InstallationId};
use thiserror::Error;
use tokio::sync::watch;

use crate::PageRequest;
use crate::commands::{CommandError, EnvironmentCommands, MissedHead};
use crate::ports::{
    Clock, DeliveryHeader, DeliveryLog, EnvironmentFilter, EnvironmentRepository, GitHubReader,
    Leases, OpenPullRequests, PullRequestState, ReportError, WebhookStore,
};
use crate::worker::{self, Next};

/// How a redelivery request is noted in the delivery log.
const REQUESTED: &str = "missed; redelivery requested";

/// Redeliveries ephemera asks for one delivery at most: a delivery that
/// fails every time needs an operator, not more requests.
pub const MAX_REQUESTS: u32 = 3;

/// Pages of 100 failed deliveries read back per pass at most.
const MAX_PAGES: u32 = 20;

/// Read back a little before the previous pass: deliveries GitHub was
/// still retrying then are listed again.
const LIST_OVERLAP: chrono::Duration = chrono::Duration::minutes(10);

/// How many redeliveries a delivery-log note says were asked for.
fn requests_noted(reason: &str) -> Option<u32> {
    let rest = reason
        .strip_prefix(REQUESTED)?
        .trim_start()
        .strip_prefix('(')?;
    rest.split_once(" of ")?.0.trim().parse().ok()
}

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

    /// Compares every live environment with its PR on GitHub: one listing
    /// of open PRs per repository (conditional, so an unchanged repository
    /// costs no rate limit), not one read per environment. Stops early when
    /// GitHub's remaining rate limit is below [`RATE_FLOOR`], leaving the
    /// budget to the reports.
    #[tracing::instrument(skip(self))]
    pub async fn sync_pull_requests(&self) -> Result<SyncSummary, SyncError> {
        let mut summary = SyncSummary::default();
        let groups = self.live_by_repository().await?;
        let resume = self
            .resume_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        // Where the last pass stopped first, then around.
        let ordered: Vec<_> = match &resume {
            Some(at) => groups
                .range(at.clone()..)
                .chain(groups.range(..at.clone()))
                .collect(),
            None => groups.iter().collect(),
        };
        for ((installation, repository_key), envs) in ordered {
            let installation = *installation;
            if self.per_pass.is_some_and(|cap| summary.requests >= cap) {
                tracing::info!(
                    requests = summary.requests,
                    "drift repair spent this pass's share of its budget; the next pass goes on"
                );
                summary.budget_spent = true;
                *self
                    .resume_at
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some((installation, repository_key.clone()));
                break;
            }
            if self
                .github
                .rate_limit_remaining()
                .is_some_and(|left| left < RATE_FLOOR)
            {
                tracing::warn!(
                    floor = RATE_FLOOR,
                    "GitHub rate limit low: drift repair waits for the next pass"
                );
                summary.rate_limited = true;
                break;
            }
            let repository = envs[0].repository.clone();
            let key = repository.key();
            let etag = self.etag(&key);
            summary.checked += envs.len();
            match self
                .github
                .open_pull_requests(installation, &repository, etag)
                .await
            {
                Ok(OpenPullRequests::Unchanged) => {}
                Ok(OpenPullRequests::Listed {
                    etag,
                    pulls,
                    complete,
                    pages,
                }) => {
                    summary.requests += pages;
                    let open: std::collections::HashMap<_, _> = pulls.into_iter().collect();
                    let mut settled = true;
                    for env in envs {
                        let outcome = match open.get(&env.pr_number) {
                            // Past the page cap: maybe open, left to webhooks.
                            None if !complete => Ok(true),
                            None => self
                                .destroy(env, "PR closed on GitHub (found by the sync; the webhook was missed)", &mut summary)
                                .await,
                            Some(state) => self.follow(env, state, &mut summary).await,
                        };
                        settled &= outcome?;
                    }
                    // Remembered only once every environment was brought in
                    // line: an unchanged list then means nothing to do.
                    self.remember_etag(key, etag.filter(|_| settled));
                }
                Err(ReportError::Gone(why)) => {
                    summary.requests += 1;
                    tracing::info!(%repository, %why, "repository no longer visible on GitHub");
                    for env in envs {
                        self.destroy(
                            env,
                            "the PR or its repository is no longer visible to the App",
                            &mut summary,
                        )
                        .await?;
                    }
                }
                // GitHub unavailable or refusing: try again next pass.
                Err(err) => {
                    summary.requests += 1;
                    tracing::warn!(%repository, error = %err, "sync skipped a repository")
                }
            }
        }
        Ok(summary)
    }

    /// Live environments with an installation, grouped by installation and
    /// repository (GitHub's id when known, else the name).
    async fn live_by_repository(
        &self,
    ) -> Result<std::collections::BTreeMap<(InstallationId, String), Vec<Environment>>, SyncError>
    {
        let filter = EnvironmentFilter {
            active_only: true,
            ..Default::default()
        };
        let mut groups: std::collections::BTreeMap<_, Vec<Environment>> = Default::default();
        let mut page = PageRequest::parse(Some(200), None).map_err(unexpected)?;
        loop {
            let rows = self
                .environments
                .list(&filter, page)
                .await
                .map_err(unexpected)?;
            let result = page.into_page(rows, |e| e.id.get());
            for env in result.items {
                if !env.is_live() {
                    continue;
                }
                let Some(installation) = env.installation_id else {
                    continue;
                };
                let repository = env
                    .repository_id
                    .map_or_else(|| env.repository.key(), |id| format!("id:{id}"));
                groups
                    .entry((installation, repository))
                    .or_default()
                    .push(env);
            }
            match result.next {
                Some(next) => page.after = Some(next),
                None => break,
            }
        }
        Ok(groups)
    }

    /// Puts a head GitHub has through the deploy policy; true when the
    /// environment is in line with GitHub afterwards.
    async fn follow(
        &self,
        env: &Environment,
        state: &PullRequestState,
        summary: &mut SyncSummary,
    ) -> Result<bool, SyncError> {
        match self.commands.deploy_missed_head(env.id, state).await {
            Ok(MissedHead::Deployed) => summary.redeployed += 1,
            Ok(MissedHead::Destroyed(reason)) => {
                tracing::info!(environment = %env.id, %reason, "sync: the policy no longer allows this preview");
                summary.destroyed += 1;
            }
            Ok(MissedHead::Held(reason)) => {
                tracing::info!(environment = %env.id, %reason, "sync: new head held back by the policy");
                summary.held += 1;
            }
            Ok(MissedHead::UpToDate) => {}
            Err(e) => return command(e).map_or(Ok(false), Err),
        }
        Ok(true)
    }

    async fn destroy(
        &self,
        env: &Environment,
        reason: &str,
        summary: &mut SyncSummary,
    ) -> Result<bool, SyncError> {
        match self.commands.destroy_because(env.id, reason).await {
            Ok(_) => {
                summary.destroyed += 1;
                Ok(true)
            }
            Err(e) => command(e).map_or(Ok(false), Err),
        }
    }

    fn etag(&self, repository: &str) -> Option<String> {
        self.etags
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(repository)
            .cloned()
    }

    fn remember_etag(&self, repository: String, etag: Option<String>) {
        let mut etags = self
            .etags
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match etag {
            Some(etag) => etags.insert(repository, etag),
            None => etags.remove(&repository),
        };
    }

    /// Asks GitHub to redeliver failed deliveries ephemera did not apply,
    /// and records that it asked (as a `failed` delivery-log entry, which a
    /// redelivery then applies afresh). Reads GitHub's failed deliveries
    /// back to the previous pass (or GitHub's 3-day window), following its
    /// cursor; never asks again for what ephemera refused for good (a 4xx:
    /// the same bytes would be refused again), waits for a redelivery it
    /// asked for, and asks for one delivery at most [`MAX_REQUESTS`] times.
    #[tracing::instrument(skip(self))]
    pub async fn redeliver_missed(&self) -> Result<Vec<String>, SyncError> {
        let now = self.clock.now();
        let window = now - chrono::Duration::days(3);
        let since = self
            .last_listed()
            .map_or(window, |last| (last - LIST_OVERLAP).max(window));
        let deliveries = match self.github.failed_deliveries(since, MAX_PAGES).await {
            Ok(d) => d,
            Err(err) => {
                tracing::warn!(error = %err, "cannot list the App's deliveries");
                return Ok(Vec::new());
            }
        };
        self.listed_at(now);
        let mut seen_guids = std::collections::HashSet::new();
        let mut asked = Vec::new();
        // Newest first: the first entry of a guid is its latest attempt.
        for delivery in deliveries {
            if !seen_guids.insert(delivery.guid.clone())
                || (200..300).contains(&delivery.status_code)
                || (400..500).contains(&delivery.status_code)
            {
                continue;
            }
            let Ok(guid) = DeliveryId::parse(&delivery.guid) else {
                continue;
            };
            let mut asked_before = 0;
            if let Some(logged) = self.deliveries.get(&guid).await.map_err(unexpected)? {
                let reason = logged.reason.as_deref().unwrap_or_default();
                let waiting = reason.starts_with(REQUESTED)
                    // GitHub has not tried again since ephemera asked.
                    && delivery.delivered_at <= logged.updated_at;
                asked_before = requests_noted(reason)
                    .unwrap_or_else(|| u32::try_from(logged.attempts - 1).unwrap_or(0));
                if logged.outcome != DeliveryOutcome::Failed
                    || reason.starts_with("unreadable payload")
                    || waiting
                    || asked_before >= MAX_REQUESTS
                {
                    continue;
                }
            }
            let header = DeliveryHeader {
                delivery_id: guid.clone(),
                event: delivery.event.clone(),
                action: delivery.action.clone(),
                repository: None,
                installation_id: None,
                body_sha256: None,
            };
            // Recorded before asking: a redelivery arriving at once finds
            // the entry and is applied over it.
            let note = format!(
                "{REQUESTED} ({} of {MAX_REQUESTS}) at {} (GitHub got {})",
                asked_before + 1,
                now.to_rfc3339(),
                delivery.status_code
            );
            self.store
                .record_failure(&header, note, now)
                .await
                .map_err(unexpected)?;
            if let Err(err) = self.github.redeliver(delivery.id).await {
                tracing::warn!(delivery = %guid, error = %err, "redelivery request failed");
                continue;
            }
            tracing::info!(delivery = %guid, event = %delivery.event, "asked GitHub to redeliver");
            asked.push(guid.to_string());
        }
        Ok(asked)
    }

    fn last_listed(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        *self
            .last_listed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn listed_at(&self, at: chrono::DateTime<chrono::Utc>) {
        *self
            .last_listed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(at);
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
