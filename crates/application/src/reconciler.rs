//! The reconciler: workers that drive each environment to what it should be
//! through the legal transitions — pending → provisioning → ready,
//! ready → updating → ready on a new commit, destroying → destroyed.
//!
//! A destroy that is under way but not finished (a namespace still
//! terminating) is looked at again later without using up an attempt.
//!
//! Level-triggered: a worker claims an environment whose work is due (with
//! a lease, so no two workers in any process touch it at once), looks at
//! what is wanted (the newest queued deployment, or a destroy), calls the
//! provisioner outside any transaction while renewing its lease, then
//! records the result against the environment as it is *then* — a webhook
//! may have queued a newer commit or asked for a destroy meanwhile.

use std::sync::Arc;
use std::time::Duration;

use ephemera_domain::{
    Deployment, Environment, EnvironmentId, InvalidTransition, PreviewUrlTemplate,
};
use thiserror::Error;
use tokio::sync::watch;

use crate::ports::{
    Clock, NoObserver, Provisioner, RepositoryError, WorkObserver, WorkQueue, WorkTx,
};
use crate::repo_config::RepoConfigs;
use crate::worker::{self, Next};

mod gate;
#[cfg(test)]
mod gate_tests;
mod lease;
mod plan;
mod record;
#[cfg(test)]
mod tests;

use plan::{Plan, Step};

/// How workers behave; every value has a setting (docs/configuration.md).
#[derive(Debug, Clone)]
pub struct ReconcilerConfig {
    /// Names this worker in leases and logs (host, pid, index).
    pub worker_id: String,
    /// How long a claim holds without renewal; a crashed worker's work is
    /// taken over this long after its last renewal.
    pub lease: Duration,
    /// Attempts at one piece of work before the environment is failed.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// How often an idle worker looks for work (webhooks also wake it).
    pub poll: Duration,
    pub preview_url: PreviewUrlTemplate,
}

/// What one `run_once` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Nothing was due.
    Idle,
    /// The environment is ready at the deployment's commit.
    Ready(EnvironmentId),
    /// The environment is destroyed.
    Destroyed(EnvironmentId),
    /// The deployment was cancelled: a newer commit or a destroy came in
    /// while it ran. The environment stays due.
    Superseded(EnvironmentId),
    /// The attempt failed and is retried after `after`.
    Retrying {
        id: EnvironmentId,
        attempt: u32,
        after: Duration,
    },
    /// Out of attempts: the environment is failed.
    Failed(EnvironmentId),
    /// The destroy is under way and looked at again after `recheck`; no
    /// attempt was used up.
    DestroyInProgress {
        id: EnvironmentId,
        recheck: Duration,
    },
    /// The environment needed nothing after all.
    NothingToDo(EnvironmentId),
    /// The repository's rules give the commit no preview (or its file is
    /// invalid): nothing new is deployed.
    Skipped(EnvironmentId),
    /// Over a cap: the environment waits in line for a slot.
    Waiting(EnvironmentId),
    /// The environment is asleep.
    Asleep(EnvironmentId),
    /// The repository's rules could not be read from GitHub; looked at
    /// again after `after`, without using up an attempt.
    RulesUnavailable { id: EnvironmentId, after: Duration },
    /// Another worker took the lease over; its result was not recorded.
    LeaseLost(EnvironmentId),
}

#[derive(Debug, Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Unavailable(RepositoryError),
    /// The worker asked for a move the lifecycle does not allow: a bug.
    #[error(transparent)]
    InvalidTransition(#[from] InvalidTransition),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<RepositoryError> for ReconcileError {
    fn from(err: RepositoryError) -> Self {
        match err {
            err @ RepositoryError::Unavailable { .. } => Self::Unavailable(err),
            other => Self::Unexpected(anyhow::Error::new(other)),
        }
    }
}

#[derive(Clone)]
pub struct Reconciler {
    queue: Arc<dyn WorkQueue>,
    provisioner: Arc<dyn Provisioner>,
    clock: Arc<dyn Clock>,
    config: ReconcilerConfig,
    observer: Arc<dyn WorkObserver>,
    configs: Option<Arc<RepoConfigs>>,
}

impl std::fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler")
            .field("provisioner", &self.provisioner.name())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn unexpected(why: String) -> ReconcileError {
    ReconcileError::Unexpected(anyhow::anyhow!(why))
}

fn lease_lost(id: EnvironmentId) -> RunOutcome {
    tracing::warn!(environment = %id, "lease lost while working; another worker took over");
    RunOutcome::LeaseLost(id)
}

impl Reconciler {
    pub fn new(
        queue: Arc<dyn WorkQueue>,
        provisioner: Arc<dyn Provisioner>,
        clock: Arc<dyn Clock>,
        config: ReconcilerConfig,
    ) -> Self {
        Self {
            queue,
            provisioner,
            clock,
            config,
            observer: Arc::new(NoObserver),
            configs: None,
        }
    }

    /// Reads each repository's rules before a deployment (without: no
    /// rules and no caps apply).
    pub fn with_rules(mut self, configs: Arc<RepoConfigs>) -> Self {
        self.configs = Some(configs);
        self
    }

    /// Reports every provisioner run's duration to `observer`.
    pub fn observed_by(mut self, observer: Arc<dyn WorkObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// Works until `stop` turns true: one environment at a time, waiting
    /// for `wake` or the poll interval when nothing is due. Each step that
    /// did something rings `wake` in this process: it may have queued a
    /// report for GitHub or freed a slot.
    pub async fn run(&self, wake: worker::Doorbell, stop: watch::Receiver<bool>) {
        tracing::info!(worker = %self.config.worker_id, provisioner = self.provisioner.name(), "worker started");
        worker::run_until_stopped(Some(wake.listen()), stop, || async {
            match self.run_once().await {
                Ok(RunOutcome::Idle) => Next::After(self.config.poll),
                Ok(_) => {
                    wake.ring_here();
                    Next::Now
                }
                Err(err) => {
                    tracing::warn!(error = format!("{err:#}"), "worker step failed");
                    Next::After(self.config.poll.max(Duration::from_secs(1)))
                }
            }
        })
        .await;
        tracing::info!(worker = %self.config.worker_id, "worker stopped");
    }

    /// Claims the environment whose work is due longest and does one step
    /// of it. Tests call this to drain work deterministically.
    pub async fn run_once(&self) -> Result<RunOutcome, ReconcileError> {
        let now = self.clock.now();
        let Some(id) = self
            .queue
            .claim(&self.config.worker_id, now, self.config.lease)
            .await?
        else {
            return Ok(RunOutcome::Idle);
        };
        let result = self.work(id).await;
        if let Err(err) = self.queue.release(id, &self.config.worker_id).await {
            tracing::warn!(environment = %id, error = %err, "could not release the lease; it expires by itself");
        }
        result
    }

    #[tracing::instrument(skip(self), fields(worker = %self.config.worker_id))]
    async fn work(&self, id: EnvironmentId) -> Result<RunOutcome, ReconcileError> {
        let gate = self.gate(id).await?;
        let plan = match self.plan(id, gate).await? {
            Step::Run(plan) => plan,
            Step::Done(outcome) => return Ok(outcome),
        };
        // Each plan is recorded with the provisioner's answer to it, and
        // only that answer.
        let outcome = match plan {
            Plan::Deploy(plan) => {
                let result = self
                    .leased(id, "provision", self.provisioner.provision(&plan.request))
                    .await;
                match result {
                    Some(result) => self.record_deploy(id, plan, result).await?,
                    None => lease_lost(id),
                }
            }
            Plan::Destroy(plan) => {
                let result = self
                    .leased(id, "destroy", self.provisioner.destroy(&plan.request))
                    .await;
                match result {
                    Some(result) => self.record_destroy(id, plan, result).await?,
                    None => lease_lost(id),
                }
            }
            Plan::Stop(plan) => {
                let result = self
                    .leased(id, "stop", self.provisioner.stop(&plan.request))
                    .await;
                match result {
                    Some(result) => self.record_stop(id, plan, result).await?,
                    None => lease_lost(id),
                }
            }
            Plan::Start(plan) => {
                let result = self
                    .leased(id, "start", self.provisioner.start(&plan.request))
                    .await;
                match result {
                    Some(result) => self.record_start(id, plan, result).await?,
                    None => lease_lost(id),
                }
            }
        };
        tracing::info!(environment = %id, outcome = ?outcome, "work step done");
        Ok(outcome)
    }

    /// Exponential backoff with jitter: `retry_base · 2^(attempt-1)`, capped
    /// at `retry_max`, spread ±20% so that environments failing together
    /// do not retry in lockstep. The spread comes from the environment id
    /// and attempt, which keeps tests deterministic without a random source.
    fn backoff(&self, id: EnvironmentId, attempt: u32) -> Duration {
        let exp = self
            .config
            .retry_base
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        let capped = exp.min(self.config.retry_max);
        let mix = (id.get() as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(u64::from(attempt).wrapping_mul(0xBF58_476D_1CE4_E5B9));
        let spread = (mix >> 33) % 41; // 0..=40
        capped.mul_f64(0.8 + spread as f64 / 100.0)
    }
}

/// Queues what GitHub should now show about the environment.
async fn report(
    tx: &mut dyn WorkTx,
    env: &Environment,
    deployment: Option<&Deployment>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), RepositoryError> {
    match ephemera_domain::PreviewReport::of(env, deployment) {
        Some(r) => tx.report(r, now).await,
        None => Ok(()),
    }
}
