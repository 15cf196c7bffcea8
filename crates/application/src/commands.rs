//! Operator actions over the REST API (redeploy, destroy, sleep, wake)
//! and the sweeps that destroy or put to sleep idle previews.

use std::sync::Arc;

use ephemera_domain::{
    CommitSha, DeployPolicy, Deployment, Environment, EnvironmentId, EnvironmentStatus,
    NewDeployment, PolicyDecision, PreviewReport, SkipReason,
};
use thiserror::Error;
use tokio::sync::watch;

use crate::ports::{Clock, PullRequestState, RepositoryError, WorkQueue, WorkTx};
use crate::worker::{self, Doorbell, Next};

#[derive(Debug, Error)]
pub enum CommandError {
    #[error("no environment with id {0}")]
    NotFound(EnvironmentId),
    /// The lifecycle does not allow it now; the message says why.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Unavailable(RepositoryError),
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

impl From<RepositoryError> for CommandError {
    fn from(err: RepositoryError) -> Self {
        match err {
            err @ RepositoryError::Unavailable { .. } => Self::Unavailable(err),
            other => Self::Unexpected(anyhow::Error::new(other)),
        }
    }
}

#[derive(Clone)]
pub struct EnvironmentCommands {
    queue: Arc<dyn WorkQueue>,
    clock: Arc<dyn Clock>,
    wake: Doorbell,
    policy: DeployPolicy,
}

/// The deployment of a PR's head a command asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadDeployment {
    pub deployment: Deployment,
    /// False when it was under way already: nothing new was queued.
    pub fresh: bool,
}

/// What drift repair did with a head GitHub has and ephemera missed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MissedHead {
    /// Nothing to do: already there, newer news applied, or being destroyed.
    UpToDate,
    Deployed,
    /// The deploy policy holds this head back; what runs keeps running.
    Held(SkipReason),
    /// The deploy policy says this PR must not have a preview any more.
    Destroyed(SkipReason),
}

/// Sends `env` to destroying for `reason`: its queued deployments are
/// cancelled, a worker is due at once, and GitHub hears of it.
async fn begin_destroy(
    tx: &mut dyn WorkTx,
    env: &mut Environment,
    reason: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), CommandError> {
    env.begin_destroy(reason, now)
        .map_err(|e| CommandError::Conflict(e.to_string()))?;
    tx.cancel_queued_deployments(env.id, now).await?;
    tx.update_environment(env).await?;
    if let Some(report) = PreviewReport::of(env, None) {
        tx.report(report, now).await?;
    }
    Ok(())
}

/// Queues a deployment of `env`'s commit (`message` says why) in place of
/// any queued one: a worker is due at once, and GitHub hears of it.
async fn queue_current_commit(
    tx: &mut dyn WorkTx,
    env: &mut Environment,
    message: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Deployment, CommandError> {
    tx.cancel_queued_deployments(env.id, now).await?;
    let deployment = tx
        .queue_deployment(
            NewDeployment {
                delivery_id: None,
                environment_id: env.id,
                commit_sha: env.commit_sha.clone(),
                commit_message: Some(message.to_owned()),
            },
            now,
        )
        .await?;
    env.request_deploy(now);
    tx.update_environment(env).await?;
    if let Some(report) = PreviewReport::of(env, Some(&deployment)) {
        tx.report(report, now).await?;
    }
    Ok(deployment)
}

/// The policy's verdict on deploying commit `sha` of `env`'s PR now.
async fn decide(
    tx: &mut dyn WorkTx,
    policy: &DeployPolicy,
    env: &Environment,
    sha: &CommitSha,
) -> Result<PolicyDecision, RepositoryError> {
    let installation = match env.installation_id {
        Some(id) => tx.installation_status(id).await?,
        None => None,
    };
    Ok(policy.evaluate_stored(env, sha, installation))
}

impl std::fmt::Debug for EnvironmentCommands {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvironmentCommands")
            .finish_non_exhaustive()
    }
}

impl EnvironmentCommands {
    pub fn new(
        queue: Arc<dyn WorkQueue>,
        clock: Arc<dyn Clock>,
        wake: Doorbell,
        policy: DeployPolicy,
    ) -> Self {
        Self {
            queue,
            clock,
            wake,
            policy,
        }
    }

    /// How every command on one environment ends: what it did is committed,
    /// or on failure rolled back, before it answers, so the environment's
    /// row is unlocked for the worker it may have woken.
    async fn finish<T>(
        tx: Box<dyn WorkTx>,
        outcome: Result<T, CommandError>,
    ) -> Result<T, CommandError> {
        match outcome {
            Ok(done) => {
                tx.commit().await?;
                Ok(done)
            }
            Err(err) => {
                if let Err(undo) = tx.rollback().await {
                    tracing::warn!(error = %undo, "rolling a refused command back failed");
                }
                Err(err)
            }
        }
    }

    /// How every command on one environment starts: the time, a
    /// transaction, and environment `id` read in it.
    async fn open(
        &self,
        id: EnvironmentId,
    ) -> Result<(chrono::DateTime<chrono::Utc>, Box<dyn WorkTx>, Environment), CommandError> {
        let now = self.clock.now();
        let mut tx = self.queue.begin().await?;
        let env = tx
            .environment(id)
            .await?
            .ok_or(CommandError::NotFound(id))?;
        Ok((now, tx, env))
    }

    /// Queues a deployment of the environment's current commit (older
    /// queued ones are cancelled); a worker picks it up.
    #[tracing::instrument(skip(self))]
    pub async fn redeploy(&self, id: EnvironmentId) -> Result<Deployment, CommandError> {
        let (now, mut tx, mut env) = self.open(id).await?;
        let outcome = async {
            if !env.is_live() {
                return Err(CommandError::Conflict(format!(
                    "environment {id} is {}; reopen or push to the PR to bring it back",
                    env.status()
                )));
            }
            // The operator's redeploy passes the same policy as a webhook:
            // it must not deploy a fork commit nobody vouched for.
            if let PolicyDecision::Skip(reason) =
                decide(tx.as_mut(), &self.policy, &env, &env.commit_sha).await?
            {
                return Err(CommandError::Conflict(format!(
                    "environment {id} cannot be redeployed at {}: {reason}",
                    env.commit_sha.short()
                )));
            }
            queue_current_commit(
                tx.as_mut(),
                &mut env,
                "redeploy requested through the API",
                now,
            )
            .await
        }
        .await;
        let deployment = Self::finish(tx, outcome).await?;
        self.wake.ring();
        Ok(deployment)
    }

    /// `/preview deploy`: a preview of the PR's head is asked for by
    /// someone with write permission (what `previews.mode: manual` waits
    /// for); it still passes the deploy policy and the repository's other
    /// rules.
    #[tracing::instrument(skip(self))]
    pub async fn deploy_on_request(
        &self,
        id: EnvironmentId,
        reason: &str,
    ) -> Result<HeadDeployment, CommandError> {
        self.queue_head(id, reason, |env| {
            env.deploy_requested_sha = Some(env.commit_sha.clone());
            Ok(())
        })
        .await
    }

    /// `/preview redeploy`: [`Self::redeploy`], but a deployment of the
    /// head already under way is not started twice.
    #[tracing::instrument(skip(self))]
    pub async fn redeploy_head(
        &self,
        id: EnvironmentId,
        reason: &str,
    ) -> Result<HeadDeployment, CommandError> {
        self.queue_head(id, reason, |_| Ok(())).await
    }

    /// `/preview approve`: someone with write permission vouches for
    /// commit `head`, a fork PR's head as GitHub has it now (a push the
    /// deploy policy held back is not the environment's commit yet), which
    /// is then deployed.
    #[tracing::instrument(skip(self))]
    pub async fn approve(
        &self,
        id: EnvironmentId,
        head: &CommitSha,
        reason: &str,
    ) -> Result<HeadDeployment, CommandError> {
        self.queue_head(id, reason, |env| {
            if !env.is_fork {
                return Err(CommandError::Conflict(format!(
                    "#{} is not from a fork: there is nothing to approve",
                    env.pr_number
                )));
            }
            env.commit_sha = head.clone();
            env.trusted_sha = Some(head.clone());
            Ok(())
        })
        .await
    }

    /// Notes something on a live environment (`note`), then queues a
    /// deployment of its head through the deploy policy, unless one is
    /// under way already (the same command twice does the work once).
    async fn queue_head(
        &self,
        id: EnvironmentId,
        reason: &str,
        note: impl FnOnce(&mut Environment) -> Result<(), CommandError>,
    ) -> Result<HeadDeployment, CommandError> {
        let (now, mut tx, mut env) = self.open(id).await?;
        let outcome = async {
            if !env.is_live() {
                return Err(CommandError::Conflict(format!(
                    "the preview is {}; reopen or push to the PR to bring it back",
                    env.status()
                )));
            }
            note(&mut env)?;
            if let PolicyDecision::Skip(why) =
                decide(tx.as_mut(), &self.policy, &env, &env.commit_sha).await?
            {
                return Err(CommandError::Conflict(format!(
                    "{} cannot be deployed: {why}",
                    env.commit_sha.short()
                )));
            }
            if let Some(active) = tx.active_deployment(env.id).await?
                && active.commit_sha == env.commit_sha
            {
                tx.update_environment(&env).await?;
                return Ok(HeadDeployment {
                    deployment: active,
                    fresh: false,
                });
            }
            let deployment = queue_current_commit(tx.as_mut(), &mut env, reason, now).await?;
            Ok(HeadDeployment {
                deployment,
                fresh: true,
            })
        }
        .await;
        let head = Self::finish(tx, outcome).await?;
        if head.fresh {
            self.wake.ring();
        }
        Ok(head)
    }

    /// Puts a ready preview to sleep (`reason` says who asked); idempotent
    /// while it is going to sleep or asleep.
    #[tracing::instrument(skip(self))]
    pub async fn sleep(
        &self,
        id: EnvironmentId,
        reason: &str,
    ) -> Result<Environment, CommandError> {
        self.sleep_or_wake(id, EnvironmentStatus::Stopping, reason)
            .await
    }

    /// Wakes a sleeping preview (`reason` says who asked); idempotent while
    /// it is waking or awake.
    #[tracing::instrument(skip(self))]
    pub async fn wake(&self, id: EnvironmentId, reason: &str) -> Result<Environment, CommandError> {
        self.sleep_or_wake(id, EnvironmentStatus::Waking, reason)
            .await
    }

    /// Moves the environment towards `to` (stopping or waking) unless it is
    /// there or past it already.
    async fn sleep_or_wake(
        &self,
        id: EnvironmentId,
        to: EnvironmentStatus,
        reason: &str,
    ) -> Result<Environment, CommandError> {
        use EnvironmentStatus::{Ready, Sleeping, Stopping, Updating, Waking};
        let (now, mut tx, mut env) = self.open(id).await?;
        let outcome = async {
            let done = match (to, env.status()) {
                (Stopping, Stopping | Sleeping) | (Waking, Waking | Ready | Updating) => true,
                (Stopping, _) => {
                    env.begin_sleep(reason, now).map_err(|_| {
                        CommandError::Conflict(format!(
                            "environment {id} is {}; only a ready preview can be put to sleep",
                            env.status()
                        ))
                    })?;
                    false
                }
                (_, _) => {
                    env.begin_wake(reason, now).map_err(|_| {
                        CommandError::Conflict(format!(
                            "environment {id} is {}; only a sleeping preview can be woken",
                            env.status()
                        ))
                    })?;
                    false
                }
            };
            if done {
                return Ok(false);
            }
            tx.update_environment(&env).await?;
            if let Some(report) = PreviewReport::of(&env, None) {
                tx.report(report, now).await?;
            }
            Ok(true)
        }
        .await;
        if Self::finish(tx, outcome).await? {
            self.wake.ring();
        }
        Ok(env)
    }

    /// The sleep sweep: puts to sleep ready previews without activity for
    /// their `sleep_after`; returns how many.
    #[tracing::instrument(skip(self))]
    pub async fn sleep_idle(&self) -> Result<usize, CommandError> {
        let now = self.clock.now();
        let mut count = 0;
        for id in self.queue.sleepy(now, 500).await? {
            let (now, mut tx, mut env) = self.open(id).await?;
            let outcome = async {
                // Re-checked under the lock: a webhook may have just
                // touched it.
                let Some(after) = env.sleep_after else {
                    return Ok(false);
                };
                let due = env.last_activity()
                    + chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX);
                if env.status() != EnvironmentStatus::Ready || due > now {
                    return Ok(false);
                }
                let reason = format!(
                    "asleep: no activity for more than {} (previews.sleep_after)",
                    ephemera_domain::format_duration(after)
                );
                env.begin_sleep(&reason, now)
                    .map_err(|e| CommandError::Conflict(e.to_string()))?;
                tx.update_environment(&env).await?;
                if let Some(report) = PreviewReport::of(&env, None) {
                    tx.report(report, now).await?;
                }
                Ok(true)
            }
            .await;
            if Self::finish(tx, outcome).await? {
                count += 1;
            }
        }
        if count > 0 {
            tracing::info!(count, "idle previews put to sleep");
            self.wake.ring();
        }
        Ok(count)
    }

    /// Asks for the environment to be destroyed. Idempotent while it is
    /// being destroyed; a conflict once it is gone.
    #[tracing::instrument(skip(self))]
    pub async fn destroy(&self, id: EnvironmentId) -> Result<Environment, CommandError> {
        self.destroy_because(id, "destroy requested through the API")
            .await
    }

    /// Drift repair: GitHub has a head (and labels, draft, fork) ephemera
    /// missed. The stored facts are brought up to date and the head goes
    /// through the same deploy policy as a webhook's: queued, held back, or
    /// the preview destroyed. Nothing happens when the environment already
    /// moved past `pr.updated_at` or is being destroyed.
    #[tracing::instrument(skip(self, pr), fields(head = %pr.head_sha.short()))]
    pub async fn deploy_missed_head(
        &self,
        id: EnvironmentId,
        pr: &PullRequestState,
    ) -> Result<MissedHead, CommandError> {
        let (now, mut tx, mut env) = self.open(id).await?;
        let outcome = async {
            let stale = env.pr_updated_at.is_some_and(|seen| pr.updated_at <= seen);
            if stale || env.commit_sha == pr.head_sha || !env.is_live() {
                return Ok(MissedHead::UpToDate);
            }
            env.is_fork = pr.is_fork;
            env.draft = pr.draft;
            env.labels = pr.labels.clone();
            env.base_ref = pr.base_ref.clone();
            if let PolicyDecision::Skip(reason) =
                decide(tx.as_mut(), &self.policy, &env, &pr.head_sha).await?
            {
                env.pr_updated_at = Some(pr.updated_at);
                env.updated_at = now;
                if reason.keeps_running() {
                    env.hold_back(&pr.head_sha, &reason);
                    tx.update_environment(&env).await?;
                    if matches!(reason, SkipReason::ForkCommitNotVouched { .. })
                        && let Some(report) = PreviewReport::of(&env, None)
                    {
                        tx.report(report, now).await?;
                    }
                    return Ok(MissedHead::Held(reason));
                }
                begin_destroy(tx.as_mut(), &mut env, &reason.to_string(), now).await?;
                return Ok(MissedHead::Destroyed(reason));
            }
            env.commit_sha = pr.head_sha.clone();
            env.pr_updated_at = Some(pr.updated_at);
            let message = "head found on GitHub (missed webhook)";
            queue_current_commit(tx.as_mut(), &mut env, message, now).await?;
            Ok(MissedHead::Deployed)
        }
        .await;
        let missed = Self::finish(tx, outcome).await?;
        if matches!(missed, MissedHead::Destroyed(_) | MissedHead::Deployed) {
            self.wake.ring();
        }
        Ok(missed)
    }

    /// [`Self::destroy`] with the reason recorded on the environment.
    pub async fn destroy_because(
        &self,
        id: EnvironmentId,
        reason: &str,
    ) -> Result<Environment, CommandError> {
        let (now, mut tx, mut env) = self.open(id).await?;
        let outcome = async {
            match env.status() {
                EnvironmentStatus::Destroying => return Ok(false),
                EnvironmentStatus::Destroyed => {
                    return Err(CommandError::Conflict(format!(
                        "environment {id} is already destroyed"
                    )));
                }
                _ => {}
            }
            begin_destroy(tx.as_mut(), &mut env, reason, now).await?;
            Ok(true)
        }
        .await;
        if Self::finish(tx, outcome).await? {
            self.wake.ring();
        }
        Ok(env)
    }

    /// Runs the TTL sweep until `stop` turns true, often enough that an
    /// environment outlives the operator's TTL by a tenth of it at most
    /// (between 1 s and 1 min; every minute without one, for the TTLs
    /// repositories set).
    pub async fn sweep_idle(
        &self,
        default_ttl: Option<std::time::Duration>,
        stop: watch::Receiver<bool>,
    ) {
        let minute = std::time::Duration::from_secs(60);
        let every = default_ttl.map_or(minute, |ttl| {
            (ttl / 10).clamp(std::time::Duration::from_secs(1), minute)
        });
        worker::run_until_stopped(None, stop, || async {
            if let Err(err) = self.destroy_idle(default_ttl).await {
                tracing::warn!(error = %err, "TTL sweep failed");
            }
            if let Err(err) = self.sleep_idle().await {
                tracing::warn!(error = %err, "sleep sweep failed");
            }
            Next::After(every)
        })
        .await;
    }

    /// The TTL sweep: destroys live environments whose PR saw no activity
    /// for their TTL (the repository's `previews.ttl`, else `default_ttl`);
    /// returns how many it asked to destroy.
    #[tracing::instrument(skip(self))]
    pub async fn destroy_idle(
        &self,
        default_ttl: Option<std::time::Duration>,
    ) -> Result<usize, CommandError> {
        let now = self.clock.now();
        let idle = self.queue.idle_since(now, default_ttl, 500).await?;
        let mut count = 0;
        for id in idle {
            let mut tx = self.queue.begin().await?;
            let outcome = async {
                let Some(mut env) = tx.environment(id).await? else {
                    return Ok(false);
                };
                let (ttl, setting) = match (env.idle_ttl, default_ttl) {
                    (Some(ttl), _) => (ttl, "previews.ttl"),
                    (None, Some(ttl)) => (ttl, "EPHEMERA_ENVIRONMENT_TTL"),
                    (None, None) => return Ok(false),
                };
                let before = now - chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
                // Re-checked under the lock: a webhook may have just
                // touched it.
                let last = env.pr_updated_at.unwrap_or(env.created_at);
                if last >= before || !env.is_live() {
                    return Ok(false);
                }
                let reason = format!(
                    "idle: no PR activity for more than {} ({setting})",
                    ephemera_domain::format_duration(ttl)
                );
                begin_destroy(tx.as_mut(), &mut env, &reason, now).await?;
                Ok(true)
            }
            .await;
            if Self::finish(tx, outcome).await? {
                count += 1;
            }
        }
        if count > 0 {
            tracing::info!(count, "idle environments sent to destroy");
            self.wake.ring();
        }
        Ok(count)
    }
}
