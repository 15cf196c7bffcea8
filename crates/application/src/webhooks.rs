//! Ingesting GitHub webhook deliveries: each delivery's state change, its
//! entry in the delivery log and the work it schedules (queued deployments,
//! environments to destroy) commit in one transaction before GitHub gets an
//! answer. Nothing slow happens here; workers pick the work up afterwards.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ephemera_domain::{
    AllowedOwners, CommitSha, DeliveryId, DeliveryOutcome, DeployPolicy, GithubUser,
    InstallationId, InstalledRepository, PrNumber, RepositoryFullName,
};

use crate::ports::{Claim, Clock, DeliveryHeader, RepositoryError, WebhookStore, WebhookTx};

mod effects;
mod error;

pub use error::{ApplyError, IngestError};
mod installation;
mod pull_request;

/// A delivery, parsed at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingDelivery {
    pub delivery_id: DeliveryId,
    pub event: String,
    pub action: Option<String>,
    pub repository: Option<RepositoryFullName>,
    pub installation_id: Option<InstallationId>,
    /// Who triggered the event.
    pub sender: Option<GithubUser>,
    /// Hex SHA-256 of the body as signed (see [`DeliveryHeader`]).
    pub body_sha256: Option<String>,
    /// `installation.updated_at` on installation events: an older one
    /// arriving late (or replayed) must not undo a newer one.
    pub installation_updated_at: Option<DateTime<Utc>>,
    pub change: DeliveryChange,
}

/// What a delivery asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryChange {
    Ping,
    PullRequest(Box<PullRequestChange>),
    InstallationCreated {
        account_login: String,
        repositories: Vec<InstalledRepository>,
    },
    InstallationDeleted {
        account_login: String,
    },
    InstallationSuspended {
        account_login: String,
    },
    InstallationUnsuspended {
        account_login: String,
    },
    RepositoriesAdded {
        account_login: String,
        repositories: Vec<InstalledRepository>,
    },
    RepositoriesRemoved {
        account_login: String,
        repositories: Vec<InstalledRepository>,
    },
    /// A `/preview` command written on a PR, or a check run's button.
    Command(Box<PreviewCommandChange>),
    /// Understood and not acted on; the reason goes to the delivery log.
    Ignored(String),
}

/// A `/preview` command from a new comment on a PR or a click on a check
/// run's button, as the webhook says it; the writer's permission is
/// checked later, by a worker, with GitHub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewCommandChange {
    pub repository: RepositoryFullName,
    /// GitHub's id of the repository.
    pub repository_id: i64,
    pub number: PrNumber,
    /// The comment (reactions go on it) or the check run's button.
    pub origin: crate::ports::CommandOrigin,
    /// Who wrote it (or clicked).
    pub author: GithubUser,
    pub command: ephemera_domain::CommentCommand,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullRequestAction {
    Opened,
    Reopened,
    ReadyForReview,
    Synchronize,
    Closed { merged: bool },
    Labeled { label: String },
    Unlabeled { label: String },
    ConvertedToDraft,
    Edited,
}

/// The PR as a `pull_request` delivery describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestChange {
    pub action: PullRequestAction,
    pub repository: RepositoryFullName,
    /// GitHub's id of the base repository: the environment's key, which
    /// survives renames.
    pub repository_id: i64,
    pub number: PrNumber,
    pub title: String,
    pub head_sha: CommitSha,
    pub head_ref: String,
    /// The branch the PR merges into.
    pub base_ref: String,
    pub is_fork: bool,
    pub open: bool,
    pub draft: bool,
    pub labels: Vec<String>,
    pub author: GithubUser,
    pub updated_at: DateTime<Utc>,
}

/// What became of a delivery, as answered to GitHub and kept in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestOutcome {
    pub outcome: DeliveryOutcome,
    pub reason: Option<String>,
}

impl IngestOutcome {
    fn applied(reason: impl Into<String>) -> Self {
        Self {
            outcome: DeliveryOutcome::Applied,
            reason: Some(reason.into()),
        }
    }

    fn ignored(reason: impl Into<String>) -> Self {
        Self {
            outcome: DeliveryOutcome::Ignored,
            reason: Some(reason.into()),
        }
    }
}

/// Concurrent deliveries racing to create one PR's environment lose with
/// a conflict and are re-applied against the winner's row.
const MAX_ATTEMPTS: usize = 5;

/// The webhook use case.
#[derive(Clone)]
pub struct IngestDelivery {
    store: Arc<dyn WebhookStore>,
    clock: Arc<dyn Clock>,
    policy: DeployPolicy,
    owners: AllowedOwners,
    wake: crate::worker::Doorbell,
}

impl std::fmt::Debug for IngestDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestDelivery")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl IngestDelivery {
    pub fn new(store: Arc<dyn WebhookStore>, clock: Arc<dyn Clock>, policy: DeployPolicy) -> Self {
        Self {
            store,
            clock,
            policy,
            owners: AllowedOwners::any(),
            wake: crate::worker::Doorbell::new(),
        }
    }

    /// Serves only installations on these accounts; deliveries for others
    /// are recorded as ignored.
    pub fn serving(mut self, owners: AllowedOwners) -> Self {
        self.owners = owners;
        self
    }

    /// Wakes idle in-process workers after each applied delivery, so work
    /// starts at once instead of at the next poll.
    pub fn waking(mut self, wake: crate::worker::Doorbell) -> Self {
        self.wake = wake;
        self
    }

    #[tracing::instrument(
        skip(self, delivery),
        fields(delivery = %delivery.delivery_id, event = %delivery.event, action = ?delivery.action)
    )]
    pub async fn ingest(&self, delivery: &IncomingDelivery) -> Result<IngestOutcome, IngestError> {
        let header = header_of(delivery);
        let mut last_conflict = None;
        for _ in 0..MAX_ATTEMPTS {
            match self.attempt(delivery, &header).await {
                Ok(outcome) => {
                    tracing::info!(outcome = %outcome.outcome, reason = ?outcome.reason, "delivery handled");
                    if outcome.outcome == DeliveryOutcome::Applied {
                        self.wake.ring();
                    }
                    return Ok(outcome);
                }
                Err(ApplyError::Store(RepositoryError::Conflict(what))) => {
                    last_conflict = Some(what)
                }
                Err(err) => return Err(self.fail(&header, err).await),
            }
        }
        let err = RepositoryError::Unexpected(anyhow::anyhow!(
            "gave up after {MAX_ATTEMPTS} conflicting attempts: {}",
            last_conflict.unwrap_or_default()
        ));
        Err(self.fail(&header, err.into()).await)
    }

    /// Notes in the delivery log that a signed delivery could not be read;
    /// best effort, the sender gets its 400 either way.
    pub async fn record_unreadable(&self, header: &DeliveryHeader, why: &str) {
        let error = format!("unreadable payload: {why}");
        if let Err(err) = self
            .store
            .record_failure(header, error, self.clock.now())
            .await
        {
            tracing::warn!(error = %err, "could not record the unreadable delivery");
        }
    }

    /// Records the failure where possible and turns it into the answer.
    async fn fail(&self, header: &DeliveryHeader, err: ApplyError) -> IngestError {
        match err {
            ApplyError::Store(err @ RepositoryError::Unavailable { .. }) => {
                IngestError::Unavailable(err)
            }
            ApplyError::Incomplete(what) => {
                if let Err(log_err) = self
                    .store
                    .record_failure(header, what.to_owned(), self.clock.now())
                    .await
                {
                    tracing::warn!(error = %log_err, "could not record the refused delivery");
                }
                IngestError::Incomplete(what)
            }
            other => {
                let error = anyhow::Error::new(other).context("applying the delivery");
                if let Err(log_err) = self
                    .store
                    .record_failure(header, format!("{error:#}"), self.clock.now())
                    .await
                {
                    tracing::warn!(error = %log_err, "could not record the failed delivery");
                }
                IngestError::Unexpected(error)
            }
        }
    }

    async fn attempt(
        &self,
        delivery: &IncomingDelivery,
        header: &DeliveryHeader,
    ) -> Result<IngestOutcome, ApplyError> {
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        match tx.claim_delivery(header, now).await? {
            Claim::Fresh => {}
            Claim::Duplicate => {
                tx.commit().await?;
                return Ok(IngestOutcome {
                    outcome: DeliveryOutcome::Duplicate,
                    reason: Some("delivery id seen before; nothing changed".into()),
                });
            }
            Claim::Replay { original } => {
                tracing::warn!(%original, "replayed delivery: the body of an earlier delivery under a new id");
                let outcome = IngestOutcome::ignored(format!(
                    "replay: the same signed body as delivery {original} under a new delivery id; nothing changed"
                ));
                return finish(tx, delivery, outcome, now).await;
            }
        }
        // Users are upserted in github_id order, so two deliveries naming the
        // same two people never lock their rows in opposite orders.
        let mut users: Vec<&GithubUser> = delivery.sender.iter().collect();
        if let DeliveryChange::PullRequest(pr) = &delivery.change {
            users.push(&pr.author);
        }
        users.sort_by_key(|u| u.github_id);
        users.dedup_by_key(|u| u.github_id);
        for user in users {
            tx.upsert_user(user, now).await?;
        }
        let outcome = self.apply(tx.as_mut(), delivery, now).await?;
        finish(tx, delivery, outcome, now).await
    }

    /// Applies the change, refusing an installation event older than one
    /// already applied (a late or replayed `installation.deleted` must not
    /// undo what came after it).
    async fn apply(
        &self,
        tx: &mut dyn WebhookTx,
        delivery: &IncomingDelivery,
        now: DateTime<Utc>,
    ) -> Result<IngestOutcome, ApplyError> {
        if let Some(account) = account_of(delivery)
            && !self.owners.allows(account)
        {
            return Ok(IngestOutcome::ignored(format!(
                "account `{account}` is not in EPHEMERA_ALLOWED_OWNERS: its installations are not served"
            )));
        }
        let installation_event = matches!(
            delivery.change,
            DeliveryChange::InstallationCreated { .. }
                | DeliveryChange::InstallationDeleted { .. }
                | DeliveryChange::InstallationSuspended { .. }
                | DeliveryChange::InstallationUnsuspended { .. }
                | DeliveryChange::RepositoriesAdded { .. }
                | DeliveryChange::RepositoriesRemoved { .. }
        );
        let stamp = delivery
            .installation_id
            .zip(delivery.installation_updated_at)
            .filter(|_| installation_event);
        if let Some((id, at)) = stamp
            && let Some(seen) = tx.installation_seen_at(id).await?
            && at < seen
        {
            return Ok(IngestOutcome::ignored(format!(
                "stale: installation.updated_at {} is older than {} already applied",
                at.to_rfc3339(),
                seen.to_rfc3339()
            )));
        }
        let outcome = self.apply_change(tx, delivery, now).await?;
        if let Some((id, at)) = stamp {
            tx.mark_installation_seen(id, at).await?;
        }
        Ok(outcome)
    }

    async fn apply_change(
        &self,
        tx: &mut dyn WebhookTx,
        delivery: &IncomingDelivery,
        now: DateTime<Utc>,
    ) -> Result<IngestOutcome, ApplyError> {
        let installation = delivery.installation_id;
        match &delivery.change {
            DeliveryChange::Ping => {
                Ok(IngestOutcome::applied("pong: the webhook reaches ephemera"))
            }
            DeliveryChange::Ignored(reason) => Ok(IngestOutcome::ignored(reason.clone())),
            DeliveryChange::PullRequest(pr) => self.pull_request(tx, pr, delivery, now).await,
            DeliveryChange::Command(c) => {
                let recorded = tx
                    .record_command(
                        &crate::ports::NewPreviewCommand {
                            origin: c.origin.clone(),
                            delivery_id: delivery.delivery_id.clone(),
                            installation_id: installation,
                            repository: c.repository.clone(),
                            repository_id: c.repository_id,
                            pr_number: c.number,
                            author_login: c.author.login.clone(),
                            command: c.command.clone(),
                        },
                        now,
                    )
                    .await?;
                let by = match &c.origin {
                    crate::ports::CommandOrigin::Comment(_) => "by",
                    crate::ports::CommandOrigin::Button { .. } => "(check run button) by",
                };
                let what = format!("{} {by} @{} on #{}", c.command, c.author.login, c.number);
                Ok(if recorded {
                    IngestOutcome::applied(format!("{what}: recorded for a worker"))
                } else {
                    IngestOutcome::ignored(format!("{what}: recorded before"))
                })
            }
            change => installation::apply(tx, change, installation, now).await,
        }
    }
}

/// The GitHub account a delivery concerns: the installation's account, or
/// the owner of the (base) repository.
/// Logs `outcome` as the delivery's and commits: the last step of every
/// claimed delivery.
async fn finish(
    mut tx: Box<dyn WebhookTx>,
    delivery: &IncomingDelivery,
    outcome: IngestOutcome,
    now: DateTime<Utc>,
) -> Result<IngestOutcome, ApplyError> {
    tx.finish_delivery(
        &delivery.delivery_id,
        outcome.outcome,
        outcome.reason.clone(),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(outcome)
}

fn account_of(delivery: &IncomingDelivery) -> Option<&str> {
    match &delivery.change {
        DeliveryChange::InstallationCreated { account_login, .. }
        | DeliveryChange::InstallationDeleted { account_login }
        | DeliveryChange::InstallationSuspended { account_login }
        | DeliveryChange::InstallationUnsuspended { account_login }
        | DeliveryChange::RepositoriesAdded { account_login, .. }
        | DeliveryChange::RepositoriesRemoved { account_login, .. } => Some(account_login),
        DeliveryChange::PullRequest(pr) => Some(pr.repository.owner()),
        DeliveryChange::Command(c) => Some(c.repository.owner()),
        DeliveryChange::Ping | DeliveryChange::Ignored(_) => {
            delivery.repository.as_ref().map(RepositoryFullName::owner)
        }
    }
}

fn header_of(delivery: &IncomingDelivery) -> DeliveryHeader {
    DeliveryHeader {
        delivery_id: delivery.delivery_id.clone(),
        event: delivery.event.clone(),
        action: delivery.action.clone(),
        repository: delivery.repository.as_ref().map(ToString::to_string),
        installation_id: delivery.installation_id,
        body_sha256: delivery.body_sha256.clone(),
    }
}

#[cfg(test)]
mod tests;
