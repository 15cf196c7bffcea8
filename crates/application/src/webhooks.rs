//! Ingesting GitHub webhook deliveries: each delivery's state change, its
//! entry in the delivery log and the work it schedules (queued deployments,
//! environments to destroy) commit in one transaction before GitHub gets an
//! answer. Nothing slow happens here; workers pick the work up afterwards.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ephemera_domain::{
    AllowedOwners, CommitSha, DeliveryId, DeliveryOutcome, DeployPolicy, Environment,
    EnvironmentStatus, GithubUser, InstallationId, InstallationRepository, InstallationStatus,
    NewDeployment, NewEnvironment, Owner, PolicyDecision, PrNumber, PreviewReport,
    PullRequestFacts, RepositoryFullName, SkipReason,
};
use thiserror::Error;

use crate::ports::{Claim, Clock, DeliveryHeader, RepositoryError, WebhookStore, WebhookTx};

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
        repositories: Vec<InstallationRepository>,
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
        repositories: Vec<InstallationRepository>,
    },
    RepositoriesRemoved {
        account_login: String,
        repositories: Vec<InstallationRepository>,
    },
    /// Understood and not acted on; the reason goes to the delivery log.
    Ignored(String),
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

#[derive(Debug, Error)]
pub enum IngestError {
    /// The database cannot be reached; GitHub should redeliver later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
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
    wake: Arc<tokio::sync::Notify>,
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
            wake: Arc::new(tokio::sync::Notify::new()),
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
    pub fn waking(mut self, wake: Arc<tokio::sync::Notify>) -> Self {
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
                        self.wake.notify_waiters();
                    }
                    return Ok(outcome);
                }
                Err(RepositoryError::Conflict(what)) => last_conflict = Some(what),
                Err(err) => return Err(self.fail(&header, err).await),
            }
        }
        let err = RepositoryError::Unexpected(anyhow::anyhow!(
            "gave up after {MAX_ATTEMPTS} conflicting attempts: {}",
            last_conflict.unwrap_or_default()
        ));
        Err(self.fail(&header, err).await)
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
    async fn fail(&self, header: &DeliveryHeader, err: RepositoryError) -> IngestError {
        match err {
            RepositoryError::Unavailable(why) => IngestError::Unavailable(why),
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
    ) -> Result<IngestOutcome, RepositoryError> {
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
                tx.finish_delivery(
                    &delivery.delivery_id,
                    outcome.outcome,
                    outcome.reason.clone(),
                    now,
                )
                .await?;
                tx.commit().await?;
                return Ok(outcome);
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

    /// Applies the change, refusing an installation event older than one
    /// already applied (a late or replayed `installation.deleted` must not
    /// undo what came after it).
    async fn apply(
        &self,
        tx: &mut dyn WebhookTx,
        delivery: &IncomingDelivery,
        now: DateTime<Utc>,
    ) -> Result<IngestOutcome, RepositoryError> {
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
    ) -> Result<IngestOutcome, RepositoryError> {
        let installation = delivery.installation_id;
        match &delivery.change {
            DeliveryChange::Ping => {
                Ok(IngestOutcome::applied("pong: the webhook reaches ephemera"))
            }
            DeliveryChange::Ignored(reason) => Ok(IngestOutcome::ignored(reason.clone())),
            DeliveryChange::PullRequest(pr) => {
                self.pull_request(tx, pr, installation, delivery.sender.as_ref(), now)
                    .await
            }
            DeliveryChange::InstallationCreated {
                account_login,
                repositories,
            } => {
                let id = require_installation(installation)?;
                tx.upsert_installation(id, account_login, InstallationStatus::Active, now)
                    .await?;
                tx.add_repositories(id, repositories).await?;
                Ok(IngestOutcome::applied(format!(
                    "installation {id} on {account_login} recorded with {} repositories",
                    repositories.len()
                )))
            }
            DeliveryChange::InstallationDeleted { account_login } => {
                let id = require_installation(installation)?;
                tx.upsert_installation(id, account_login, InstallationStatus::Deleted, now)
                    .await?;
                let envs = tx.live_environments_of_installation(id).await?;
                let reason = format!("installation {id} was deleted");
                let count = destroy_all(tx, envs, &reason, now).await?;
                Ok(IngestOutcome::applied(format!(
                    "installation {id} deleted; {count} environments destroying"
                )))
            }
            DeliveryChange::InstallationSuspended { account_login } => {
                let id = require_installation(installation)?;
                tx.upsert_installation(id, account_login, InstallationStatus::Suspended, now)
                    .await?;
                Ok(IngestOutcome::applied(format!(
                    "installation {id} suspended: no new deployments until unsuspended"
                )))
            }
            DeliveryChange::InstallationUnsuspended { account_login } => {
                let id = require_installation(installation)?;
                tx.upsert_installation(id, account_login, InstallationStatus::Active, now)
                    .await?;
                Ok(IngestOutcome::applied(format!(
                    "installation {id} active again"
                )))
            }
            DeliveryChange::RepositoriesAdded {
                account_login,
                repositories,
            } => {
                let id = require_installation(installation)?;
                if tx.installation_status(id).await?.is_none() {
                    tx.upsert_installation(id, account_login, InstallationStatus::Active, now)
                        .await?;
                }
                tx.add_repositories(id, repositories).await?;
                Ok(IngestOutcome::applied(format!(
                    "{} repositories added to installation {id}",
                    repositories.len()
                )))
            }
            DeliveryChange::RepositoriesRemoved {
                account_login,
                repositories,
            } => {
                let id = require_installation(installation)?;
                if tx.installation_status(id).await?.is_none() {
                    tx.upsert_installation(id, account_login, InstallationStatus::Active, now)
                        .await?;
                }
                tx.remove_repositories(id, repositories).await?;
                let mut count = 0;
                for repo in repositories {
                    let envs = tx.live_environments_of_repository(repo).await?;
                    let reason = format!("repository removed from installation {id}");
                    count += destroy_all(tx, envs, &reason, now).await?;
                }
                Ok(IngestOutcome::applied(format!(
                    "{} repositories removed from installation {id}; {count} environments destroying",
                    repositories.len()
                )))
            }
        }
    }

    async fn pull_request(
        &self,
        tx: &mut dyn WebhookTx,
        pr: &PullRequestChange,
        installation: Option<InstallationId>,
        sender: Option<&GithubUser>,
        now: DateTime<Utc>,
    ) -> Result<IngestOutcome, RepositoryError> {
        let existing = tx
            .environment_for_pr(Some(pr.repository_id), &pr.repository, pr.number)
            .await?;

        if let Some(applied) = existing.as_ref().and_then(|env| env.pr_updated_at)
            && pr.updated_at < applied
        {
            return Ok(IngestOutcome::ignored(format!(
                "stale: pull_request.updated_at {} is older than {} already applied",
                pr.updated_at.to_rfc3339(),
                applied.to_rfc3339()
            )));
        }

        if !pr.open || matches!(pr.action, PullRequestAction::Closed { .. }) {
            let Some(env) = existing else {
                return Ok(IngestOutcome::ignored("PR closed; it had no environment"));
            };
            let how = match pr.action {
                PullRequestAction::Closed { merged: true } => "PR merged",
                _ => "PR closed",
            };
            return self.destroy(tx, env, pr, how, now).await;
        }

        // A maintainer adding the trusted label vouches for this head commit.
        let vouching = matches!(&pr.action, PullRequestAction::Labeled { label }
            if label.eq_ignore_ascii_case(&self.policy.trusted_label)
                && sender.is_some_and(|s| s.github_id != pr.author.github_id));
        let head_vouched = vouching
            || existing
                .as_ref()
                .is_some_and(|env| env.trusted_sha.as_ref() == Some(&pr.head_sha));
        if let Some(skip) = self
            .blocked_by(tx, pr, installation, sender, head_vouched)
            .await?
        {
            let reason = skip.to_string();
            return match existing {
                Some(mut env) if skip.keeps_running() => {
                    note_pr(&mut env, pr);
                    // The sticky comment says which commit waits and why;
                    // a suspended App cannot be talked to.
                    let tell = matches!(skip, SkipReason::ForkCommitNotVouched { .. })
                        && is_live(env.status);
                    if tell {
                        env.status_reason = Some(format!(
                            "commit {} is not deployed: {reason}",
                            pr.head_sha.short()
                        ));
                    }
                    tx.update_environment(&env).await?;
                    if tell {
                        report(tx, &env, None).await?;
                    }
                    Ok(IngestOutcome::ignored(reason))
                }
                Some(mut env) if is_live(env.status) => {
                    note_pr(&mut env, pr);
                    self.destroy(tx, env, pr, &reason, now).await
                }
                Some(mut env) => {
                    note_pr(&mut env, pr);
                    tx.update_environment(&env).await?;
                    Ok(IngestOutcome::ignored(reason))
                }
                None => Ok(IngestOutcome::ignored(reason)),
            };
        }

        let trusted_sha = (pr.is_fork && vouching).then(|| pr.head_sha.clone());
        match existing {
            None => {
                let mut env = tx
                    .insert_environment(
                        NewEnvironment {
                            repository: pr.repository.clone(),
                            repository_id: Some(pr.repository_id),
                            pr_number: pr.number,
                            pr_title: pr.title.clone(),
                            branch_name: pr.head_ref.clone(),
                            commit_sha: pr.head_sha.clone(),
                            installation_id: installation,
                            owner: Some(owner_of(&pr.author)),
                            pr_updated_at: Some(pr.updated_at),
                            is_fork: pr.is_fork,
                            draft: pr.draft,
                            labels: pr.labels.clone(),
                        },
                        now,
                    )
                    .await?;
                if trusted_sha.is_some() {
                    env.trusted_sha = trusted_sha;
                    tx.update_environment(&env).await?;
                }
                queue(tx, &env, now).await?;
                Ok(IngestOutcome::applied(format!(
                    "environment {} created in namespace {}; deployment of {} queued",
                    env.id,
                    env.namespace,
                    env.commit_sha.short()
                )))
            }
            Some(mut env) => {
                let new_commit = env.commit_sha != pr.head_sha;
                let opening = matches!(
                    pr.action,
                    PullRequestAction::Opened
                        | PullRequestAction::Reopened
                        | PullRequestAction::ReadyForReview
                        | PullRequestAction::Synchronize
                );
                if env.status == EnvironmentStatus::Destroyed && !opening && !new_commit {
                    // An environment removed by the API or the TTL comes back
                    // with a reopen or a new commit, not with a label or title.
                    env.pr_updated_at = Some(pr.updated_at);
                    tx.update_environment(&env).await?;
                    return Ok(IngestOutcome::ignored(format!(
                        "environment {} is destroyed; a reopen or a new commit brings it back",
                        env.id
                    )));
                }
                if env.status == EnvironmentStatus::Destroying {
                    // Recreated as soon as the destroy finishes: the worker
                    // finds this queued deployment and revives the record.
                    refresh(&mut env, pr, installation, now);
                    tx.update_environment(&env).await?;
                    queue(tx, &env, now).await?;
                    return Ok(IngestOutcome::applied(format!(
                        "environment {} is being destroyed; it is recreated at {} right after",
                        env.id,
                        env.commit_sha.short()
                    )));
                }
                let revived = env.status == EnvironmentStatus::Destroyed;
                if revived {
                    env.transition_to(EnvironmentStatus::Pending, now)
                        .map_err(|e| RepositoryError::Unexpected(e.into()))?;
                }
                refresh(&mut env, pr, installation, now);
                if trusted_sha.is_some() {
                    env.trusted_sha = trusted_sha;
                }
                if revived || new_commit {
                    env.work_due_at = Some(now);
                    env.work_attempts = 0;
                    // A note about a commit held back no longer applies.
                    env.status_reason = None;
                }
                tx.update_environment(&env).await?;
                if revived || new_commit {
                    let cancelled = tx.cancel_queued_deployments(env.id, now).await?;
                    queue(tx, &env, now).await?;
                    let what = if revived { "revived" } else { "updated" };
                    let mut reason = format!(
                        "environment {} {what}; deployment of {} queued",
                        env.id,
                        env.commit_sha.short()
                    );
                    if cancelled > 0 {
                        reason
                            .push_str(&format!("; {cancelled} older queued deployments cancelled"));
                    }
                    Ok(IngestOutcome::applied(reason))
                } else {
                    Ok(IngestOutcome::applied(format!(
                        "environment {} already at {}; details refreshed",
                        env.id,
                        env.commit_sha.short()
                    )))
                }
            }
        }
    }

    /// Why this PR's head must not be deployed now, if it must not.
    async fn blocked_by(
        &self,
        tx: &mut dyn WebhookTx,
        pr: &PullRequestChange,
        installation: Option<InstallationId>,
        sender: Option<&GithubUser>,
        head_vouched: bool,
    ) -> Result<Option<SkipReason>, RepositoryError> {
        let installation = match installation {
            Some(id) => tx.installation_status(id).await?,
            None => None,
        };
        let self_applied_label = match (&pr.action, sender) {
            (PullRequestAction::Labeled { label }, Some(sender))
                if sender.github_id == pr.author.github_id =>
            {
                Some(label.as_str())
            }
            _ => None,
        };
        let facts = PullRequestFacts {
            is_fork: pr.is_fork,
            draft: pr.draft,
            labels: &pr.labels,
            self_applied_label,
            head_vouched,
            installation,
        };
        Ok(match self.policy.evaluate(&facts) {
            PolicyDecision::Deploy => None,
            PolicyDecision::Skip(reason) => Some(reason),
        })
    }

    async fn destroy(
        &self,
        tx: &mut dyn WebhookTx,
        mut env: Environment,
        pr: &PullRequestChange,
        why: &str,
        now: DateTime<Utc>,
    ) -> Result<IngestOutcome, RepositoryError> {
        env.pr_updated_at = Some(pr.updated_at);
        if !is_live(env.status) {
            tx.update_environment(&env).await?;
            return Ok(IngestOutcome::ignored(format!(
                "{why}; environment {} is already {}",
                env.id, env.status
            )));
        }
        let id = env.id;
        destroy_all(tx, vec![env], why, now).await?;
        Ok(IngestOutcome::applied(format!(
            "{why}; environment {id} destroying"
        )))
    }
}

/// The GitHub account a delivery concerns: the installation's account, or
/// the owner of the (base) repository.
fn account_of(delivery: &IncomingDelivery) -> Option<&str> {
    match &delivery.change {
        DeliveryChange::InstallationCreated { account_login, .. }
        | DeliveryChange::InstallationDeleted { account_login }
        | DeliveryChange::InstallationSuspended { account_login }
        | DeliveryChange::InstallationUnsuspended { account_login }
        | DeliveryChange::RepositoriesAdded { account_login, .. }
        | DeliveryChange::RepositoriesRemoved { account_login, .. } => Some(account_login),
        DeliveryChange::PullRequest(pr) => Some(pr.repository.owner()),
        DeliveryChange::Ping | DeliveryChange::Ignored(_) => {
            delivery.repository.as_ref().map(RepositoryFullName::owner)
        }
    }
}

/// Live = neither destroyed nor already on its way there.
fn is_live(status: EnvironmentStatus) -> bool {
    !matches!(
        status,
        EnvironmentStatus::Destroying | EnvironmentStatus::Destroyed
    )
}

/// Moves every live environment to destroying and cancels its queued
/// deployments; returns how many moved.
async fn destroy_all(
    tx: &mut dyn WebhookTx,
    envs: Vec<Environment>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<usize, RepositoryError> {
    let mut count = 0;
    for mut env in envs {
        if !is_live(env.status) {
            continue;
        }
        env.transition_to(EnvironmentStatus::Destroying, now)
            .map_err(|e| RepositoryError::Unexpected(e.into()))?;
        env.status_reason = Some(reason.to_owned());
        env.work_due_at = Some(now);
        env.work_attempts = 0;
        tx.update_environment(&env).await?;
        tx.cancel_queued_deployments(env.id, now).await?;
        report(tx, &env, None).await?;
        count += 1;
    }
    Ok(count)
}

/// Queues a deployment of the environment's commit and reports it.
async fn queue(
    tx: &mut dyn WebhookTx,
    env: &Environment,
    now: DateTime<Utc>,
) -> Result<(), RepositoryError> {
    let deployment = tx
        .queue_deployment(
            NewDeployment {
                environment_id: env.id,
                commit_sha: env.commit_sha.clone(),
                commit_message: None,
            },
            now,
        )
        .await?;
    report(tx, env, Some(&deployment)).await
}

/// Queues what GitHub should now show about the environment.
async fn report(
    tx: &mut dyn WebhookTx,
    env: &Environment,
    deployment: Option<&ephemera_domain::Deployment>,
) -> Result<(), RepositoryError> {
    match PreviewReport::of(env, deployment) {
        Some(r) => tx.report(r).await,
        None => Ok(()),
    }
}

/// Copies what the PR says now onto its environment.
fn refresh(
    env: &mut Environment,
    pr: &PullRequestChange,
    installation: Option<InstallationId>,
    now: DateTime<Utc>,
) {
    // A renamed repository (case-only too) keeps its environments: the name
    // follows GitHub, the id and the namespace stay.
    env.repository = pr.repository.clone();
    env.repository_id = Some(pr.repository_id);
    env.pr_title = pr.title.clone();
    env.branch_name = pr.head_ref.clone();
    env.commit_sha = pr.head_sha.clone();
    env.owner = Some(owner_of(&pr.author));
    if installation.is_some() {
        env.installation_id = installation;
    }
    note_pr(env, pr);
    env.updated_at = now;
}

/// Records what the policy needs from the newest PR event, and its time.
fn note_pr(env: &mut Environment, pr: &PullRequestChange) {
    env.is_fork = pr.is_fork;
    env.draft = pr.draft;
    env.labels = pr.labels.clone();
    env.pr_updated_at = Some(pr.updated_at);
}

fn owner_of(user: &GithubUser) -> Owner {
    Owner {
        github_id: user.github_id,
        login: user.login.clone(),
    }
}

fn require_installation(id: Option<InstallationId>) -> Result<InstallationId, RepositoryError> {
    id.ok_or_else(|| {
        RepositoryError::Unexpected(anyhow::anyhow!(
            "installation event without an installation id"
        ))
    })
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
mod tests {
    use std::sync::Mutex;

    use ephemera_domain::{
        Deployment, DeploymentId, DeploymentStatus, EnvironmentId, GithubUserId, Namespace,
    };

    use super::*;
    use crate::ports::{MockClock, MockWebhookStore, MockWebhookTx};

    type Calls = Arc<Mutex<Vec<String>>>;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    fn user(id: i64, login: &str) -> GithubUser {
        GithubUser {
            github_id: GithubUserId::new(id).unwrap(),
            login: login.into(),
            email: None,
            avatar_url: None,
        }
    }

    fn pr_change(action: PullRequestAction, sha: char, updated: i64) -> Box<PullRequestChange> {
        Box::new(PullRequestChange {
            action,
            repository: RepositoryFullName::parse("Codertocat/Hello-World").unwrap(),
            repository_id: 186853002,
            number: PrNumber::new(2).unwrap(),
            title: "Update the README".into(),
            head_sha: CommitSha::parse(&sha.to_string().repeat(40)).unwrap(),
            head_ref: "changes".into(),
            is_fork: false,
            open: true,
            draft: false,
            labels: vec![],
            author: user(1, "Codertocat"),
            updated_at: at(updated),
        })
    }

    fn delivery(change: DeliveryChange) -> IncomingDelivery {
        IncomingDelivery {
            delivery_id: DeliveryId::parse("72d3162e-cc78-11e3-81ab-4c9367dc0958").unwrap(),
            event: "pull_request".into(),
            action: Some("opened".into()),
            repository: RepositoryFullName::parse("Codertocat/Hello-World").ok(),
            body_sha256: None,
            installation_updated_at: None,
            installation_id: Some(InstallationId::new(1).unwrap()),
            sender: Some(user(1, "Codertocat")),
            change,
        }
    }

    fn environment(status: EnvironmentStatus, sha: char, pr_updated: i64) -> Environment {
        let repository = RepositoryFullName::parse("Codertocat/Hello-World").unwrap();
        let pr_number = PrNumber::new(2).unwrap();
        Environment {
            id: EnvironmentId::new(7).unwrap(),
            namespace: Namespace::for_pr(&repository, pr_number),
            repository,
            repository_id: None,
            pr_number,
            pr_title: "old title".into(),
            branch_name: "changes".into(),
            commit_sha: CommitSha::parse(&sha.to_string().repeat(40)).unwrap(),
            environment_url: None,
            status,
            installation_id: None,
            owner: None,
            error_message: None,
            status_reason: None,
            last_deployed_at: None,
            pr_updated_at: Some(at(pr_updated)),
            created_at: at(0),
            updated_at: at(0),
            destroyed_at: None,
            work_due_at: None,
            work_attempts: 0,
            trusted_sha: None,
            is_fork: false,
            draft: false,
            labels: Vec::new(),
        }
    }

    /// A transaction that records every write as a line in `calls`.
    fn recording_tx(
        calls: &Calls,
        claim: Claim,
        existing: Option<Environment>,
        installation: Option<InstallationStatus>,
    ) -> MockWebhookTx {
        let mut tx = MockWebhookTx::new();
        let c = calls.clone();
        tx.expect_claim_delivery().returning(move |_, _| {
            c.lock().unwrap().push("claim".into());
            Ok(claim.clone())
        });
        tx.expect_upsert_user().returning(|_, _| Ok(()));
        tx.expect_environment_for_pr()
            .returning(move |_, _, _| Ok(existing.clone()));
        tx.expect_installation_status()
            .returning(move |_| Ok(installation));
        let c = calls.clone();
        tx.expect_insert_environment().returning(move |new, now| {
            c.lock()
                .unwrap()
                .push(format!("insert {}", new.commit_sha.short()));
            let mut env = environment(EnvironmentStatus::Pending, 'a', 0);
            env.commit_sha = new.commit_sha;
            env.pr_updated_at = new.pr_updated_at;
            env.created_at = now;
            Ok(env)
        });
        let c = calls.clone();
        tx.expect_update_environment().returning(move |env| {
            c.lock()
                .unwrap()
                .push(format!("update {} {}", env.status, env.commit_sha.short()));
            Ok(())
        });
        let c = calls.clone();
        tx.expect_queue_deployment().returning(move |new, now| {
            c.lock()
                .unwrap()
                .push(format!("queue {}", new.commit_sha.short()));
            Ok(Deployment {
                id: DeploymentId::new(1).unwrap(),
                environment_id: new.environment_id,
                commit_sha: new.commit_sha,
                commit_message: None,
                status: DeploymentStatus::Queued,
                started_at: None,
                completed_at: None,
                error_message: None,
                logs: String::new(),
                created_at: now,
                updated_at: now,
            })
        });
        let c = calls.clone();
        tx.expect_cancel_queued_deployments()
            .returning(move |_, _| {
                c.lock().unwrap().push("cancel queued".into());
                Ok(1)
            });
        let c = calls.clone();
        tx.expect_finish_delivery()
            .returning(move |_, outcome, _, _| {
                c.lock().unwrap().push(format!("finish {outcome}"));
                Ok(())
            });
        tx.expect_report().returning(|_| Ok(()));
        let c = calls.clone();
        tx.expect_commit().returning(move || {
            c.lock().unwrap().push("commit".into());
            Ok(())
        });
        tx
    }

    fn use_case(store: MockWebhookStore, policy: DeployPolicy) -> IngestDelivery {
        let mut clock = MockClock::new();
        clock.expect_now().returning(|| at(1000));
        IngestDelivery::new(Arc::new(store), Arc::new(clock), policy)
    }

    fn store_with(txs: Vec<MockWebhookTx>) -> MockWebhookStore {
        let txs = Mutex::new(txs.into_iter());
        let mut store = MockWebhookStore::new();
        store.expect_begin().returning(move || {
            let tx = txs
                .lock()
                .unwrap()
                .next()
                .expect("no more transactions planned");
            Ok(Box::new(tx) as Box<dyn WebhookTx>)
        });
        store
    }

    fn calls(calls: &Calls) -> Vec<String> {
        calls.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn opened_pr_creates_environment_and_queues_a_deployment() {
        let log = Calls::default();
        let store = store_with(vec![recording_tx(&log, Claim::Fresh, None, None)]);
        let change = DeliveryChange::PullRequest(pr_change(PullRequestAction::Opened, 'e', 10));

        let outcome = use_case(store, DeployPolicy::default())
            .ingest(&delivery(change))
            .await
            .unwrap();

        assert_eq!(outcome.outcome, DeliveryOutcome::Applied);
        assert_eq!(
            calls(&log),
            [
                "claim",
                "insert eeeeeee",
                "queue eeeeeee",
                "finish applied",
                "commit"
            ]
        );
    }

    #[tokio::test]
    async fn a_duplicate_changes_nothing() {
        let log = Calls::default();
        let store = store_with(vec![recording_tx(&log, Claim::Duplicate, None, None)]);
        let change = DeliveryChange::PullRequest(pr_change(PullRequestAction::Opened, 'e', 10));

        let outcome = use_case(store, DeployPolicy::default())
            .ingest(&delivery(change))
            .await
            .unwrap();

        assert_eq!(outcome.outcome, DeliveryOutcome::Duplicate);
        assert_eq!(calls(&log), ["claim", "commit"]);
    }

    #[tokio::test]
    async fn new_commit_cancels_queued_work_and_queues_the_new_head() {
        let log = Calls::default();
        let existing = environment(EnvironmentStatus::Ready, 'a', 10);
        let store = store_with(vec![recording_tx(&log, Claim::Fresh, Some(existing), None)]);
        let change =
            DeliveryChange::PullRequest(pr_change(PullRequestAction::Synchronize, 'b', 20));

        let outcome = use_case(store, DeployPolicy::default())
            .ingest(&delivery(change))
            .await
            .unwrap();

        assert_eq!(outcome.outcome, DeliveryOutcome::Applied);
        assert_eq!(
            calls(&log),
            [
                "claim",
                "update ready bbbbbbb",
                "cancel queued",
                "queue bbbbbbb",
                "finish applied",
                "commit"
            ]
        );
    }

    #[tokio::test]
    async fn an_older_event_never_moves_the_environment_backwards() {
        let log = Calls::default();
        let existing = environment(EnvironmentStatus::Ready, 'b', 20);
        let store = store_with(vec![recording_tx(&log, Claim::Fresh, Some(existing), None)]);
        let change =
            DeliveryChange::PullRequest(pr_change(PullRequestAction::Synchronize, 'a', 10));

        let outcome = use_case(store, DeployPolicy::default())
            .ingest(&delivery(change))
            .await
            .unwrap();

        assert_eq!(outcome.outcome, DeliveryOutcome::Ignored);
        assert!(outcome.reason.unwrap().starts_with("stale:"));
        assert_eq!(calls(&log), ["claim", "finish ignored", "commit"]);
    }

    #[tokio::test]
    async fn closing_destroys_and_cancels_queued_deployments() {
        let log = Calls::default();
        let existing = environment(EnvironmentStatus::Ready, 'a', 10);
        let store = store_with(vec![recording_tx(&log, Claim::Fresh, Some(existing), None)]);
        let mut pr = pr_change(PullRequestAction::Closed { merged: true }, 'a', 20);
        pr.open = false;

        let outcome = use_case(store, DeployPolicy::default())
            .ingest(&delivery(DeliveryChange::PullRequest(pr)))
            .await
            .unwrap();

        assert_eq!(
            outcome.reason.as_deref(),
            Some("PR merged; environment 7 destroying")
        );
        assert_eq!(
            calls(&log),
            [
                "claim",
                "update destroying aaaaaaa",
                "cancel queued",
                "finish applied",
                "commit"
            ]
        );
    }

    #[tokio::test]
    async fn fork_pr_is_ignored_with_the_reason() {
        let log = Calls::default();
        let store = store_with(vec![recording_tx(&log, Claim::Fresh, None, None)]);
        let mut pr = pr_change(PullRequestAction::Opened, 'a', 10);
        pr.is_fork = true;

        let outcome = use_case(store, DeployPolicy::default())
            .ingest(&delivery(DeliveryChange::PullRequest(pr)))
            .await
            .unwrap();

        assert_eq!(outcome.outcome, DeliveryOutcome::Ignored);
        assert!(outcome.reason.unwrap().contains("safe-to-preview"));
        assert_eq!(calls(&log), ["claim", "finish ignored", "commit"]);
    }

    #[tokio::test]
    async fn suspended_installation_gets_no_new_deployment() {
        let log = Calls::default();
        let store = store_with(vec![recording_tx(
            &log,
            Claim::Fresh,
            None,
            Some(InstallationStatus::Suspended),
        )]);
        let change = DeliveryChange::PullRequest(pr_change(PullRequestAction::Opened, 'a', 10));

        let outcome = use_case(store, DeployPolicy::default())
            .ingest(&delivery(change))
            .await
            .unwrap();

        assert_eq!(outcome.outcome, DeliveryOutcome::Ignored);
        assert!(outcome.reason.unwrap().contains("suspended"));
    }

    #[tokio::test]
    async fn losing_a_creation_race_retries_against_the_winner() {
        let log = Calls::default();
        let mut loser = MockWebhookTx::new();
        loser
            .expect_claim_delivery()
            .returning(|_, _| Ok(Claim::Fresh));
        loser.expect_upsert_user().returning(|_, _| Ok(()));
        loser
            .expect_environment_for_pr()
            .returning(|_, _, _| Ok(None));
        loser.expect_installation_status().returning(|_| Ok(None));
        loser
            .expect_insert_environment()
            .returning(|_, _| Err(RepositoryError::Conflict("environments".into())));
        loser.expect_commit().never();
        let winner = environment(EnvironmentStatus::Pending, 'a', 5);
        let store = store_with(vec![
            loser,
            recording_tx(&log, Claim::Fresh, Some(winner), None),
        ]);
        let change =
            DeliveryChange::PullRequest(pr_change(PullRequestAction::Synchronize, 'b', 10));

        let outcome = use_case(store, DeployPolicy::default())
            .ingest(&delivery(change))
            .await
            .unwrap();

        assert_eq!(outcome.outcome, DeliveryOutcome::Applied);
        assert!(calls(&log).contains(&"queue bbbbbbb".to_owned()));
    }

    #[tokio::test]
    async fn unreachable_database_is_unavailable_and_not_recorded() {
        let mut store = MockWebhookStore::new();
        store
            .expect_begin()
            .returning(|| Err(RepositoryError::Unavailable("connection refused".into())));
        store.expect_record_failure().never();

        let err = use_case(store, DeployPolicy::default())
            .ingest(&delivery(DeliveryChange::Ping))
            .await
            .unwrap_err();

        assert!(matches!(err, IngestError::Unavailable(_)));
    }

    #[tokio::test]
    async fn unexpected_failure_is_recorded_for_the_operator() {
        let mut store = MockWebhookStore::new();
        store
            .expect_begin()
            .returning(|| Err(RepositoryError::Unexpected(anyhow::anyhow!("disk full"))));
        store
            .expect_record_failure()
            .withf(|header, error, _| header.event == "pull_request" && error.contains("disk full"))
            .times(1)
            .returning(|_, _, _| Ok(()));

        let err = use_case(store, DeployPolicy::default())
            .ingest(&delivery(DeliveryChange::Ping))
            .await
            .unwrap_err();

        assert!(matches!(err, IngestError::Unexpected(_)));
    }
}
