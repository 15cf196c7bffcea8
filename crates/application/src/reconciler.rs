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

use chrono::{DateTime, Utc};
use ephemera_domain::{
    CommitSha, Deployment, DeploymentId, DeploymentStatus, DueWork, Environment, EnvironmentId,
    EnvironmentStatus, NewDeployment, PreviewUrlTemplate,
};
use thiserror::Error;
use tokio::sync::{Notify, watch};

use crate::ports::{
    Clock, NoObserver, ProvisionFailure, ProvisionRequest, Provisioned, Provisioner,
    RepositoryError, Teardown, WorkObserver, WorkQueue, WorkTx,
};

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
    /// Another worker took the lease over; its result was not recorded.
    LeaseLost(EnvironmentId),
}

#[derive(Debug, Error)]
pub enum ReconcileError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<RepositoryError> for ReconcileError {
    fn from(err: RepositoryError) -> Self {
        match err {
            RepositoryError::Unavailable(why) => Self::Unavailable(why),
            other => Self::Unexpected(anyhow::Error::new(other)),
        }
    }
}

#[derive(Debug, Clone)]
enum Plan {
    Deploy {
        request: ProvisionRequest,
        deployment: DeploymentId,
        attempt: u32,
    },
    Destroy {
        request: ProvisionRequest,
        attempt: u32,
    },
}

#[derive(Debug)]
enum Done {
    Provisioned(Provisioned),
    Destroyed(Teardown),
}

#[derive(Clone)]
pub struct Reconciler {
    queue: Arc<dyn WorkQueue>,
    provisioner: Arc<dyn Provisioner>,
    clock: Arc<dyn Clock>,
    config: ReconcilerConfig,
    observer: Arc<dyn WorkObserver>,
}

impl std::fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler")
            .field("provisioner", &self.provisioner.name())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn unexpected(err: impl std::fmt::Display) -> ReconcileError {
    ReconcileError::Unexpected(anyhow::anyhow!("{err}"))
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
        }
    }

    /// Reports every provisioner run's duration to `observer`.
    pub fn observed_by(mut self, observer: Arc<dyn WorkObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// Works until `stop` turns true: one environment at a time, waiting
    /// for `wake` or the poll interval when nothing is due.
    pub async fn run(&self, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
        tracing::info!(worker = %self.config.worker_id, provisioner = self.provisioner.name(), "worker started");
        while !*stop.borrow() {
            let pause = match self.run_once().await {
                Ok(RunOutcome::Idle) => Some(self.config.poll),
                Ok(_) => None,
                Err(err) => {
                    tracing::warn!(error = format!("{err:#}"), "worker step failed");
                    Some(self.config.poll.max(Duration::from_secs(1)))
                }
            };
            if let Some(pause) = pause {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = wake.notified() => {}
                    _ = stop.changed() => {}
                }
            }
        }
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
        let Some(plan) = self.plan(id).await? else {
            return Ok(RunOutcome::NothingToDo(id));
        };
        let Some(result) = self.execute(id, &plan).await else {
            tracing::warn!(environment = %id, "lease lost while working; another worker took over");
            return Ok(RunOutcome::LeaseLost(id));
        };
        let outcome = self.record(id, plan, result).await?;
        tracing::info!(environment = %id, outcome = ?outcome, "work step done");
        Ok(outcome)
    }

    fn request(&self, env: &Environment, commit: &CommitSha) -> ProvisionRequest {
        ProvisionRequest {
            environment_id: env.id,
            namespace: env.namespace.clone(),
            repository: env.repository.clone(),
            pr_number: env.pr_number,
            commit_sha: commit.clone(),
            branch: env.branch_name.clone(),
            installation_id: env.installation_id,
            preview_url: self.config.preview_url.render(
                &env.namespace,
                &env.repository,
                env.pr_number,
            ),
        }
    }

    /// Decides what to do and marks it started, in one transaction.
    async fn plan(&self, id: EnvironmentId) -> Result<Option<Plan>, ReconcileError> {
        let now = self.clock.now();
        let mut tx = self.queue.begin().await?;
        let Some(mut env) = tx.environment(id).await? else {
            return Ok(None);
        };
        if !tx.holds_lease(id, &self.config.worker_id).await? {
            return Ok(None);
        }
        let attempt = env.next_attempt();
        match env.due_work() {
            DueWork::Settle => {
                settle(tx.as_mut(), &mut env).await?;
                tx.commit().await?;
                return Ok(None);
            }
            DueWork::Destroy => {
                let request = self.request(&env, &env.commit_sha.clone());
                tx.commit().await?;
                return Ok(Some(Plan::Destroy { request, attempt }));
            }
            DueWork::Deploy => {}
        }

        let deployment = match tx.active_deployment(env.id).await? {
            Some(d) => d,
            None if env.awaits_deployment() => {
                let new = NewDeployment {
                    environment_id: env.id,
                    commit_sha: env.commit_sha.clone(),
                    commit_message: None,
                };
                tx.queue_deployment(new, now).await?
            }
            None => {
                settle(tx.as_mut(), &mut env).await?;
                tx.commit().await?;
                return Ok(None);
            }
        };
        let before = env.status();
        env.begin_deploy(now).map_err(unexpected)?;
        if env.status() != before {
            tx.update_environment(&env).await?;
        }
        // Only the newest wanted deployment runs; any older one (queued, or
        // left in progress by a failed attempt) is superseded.
        tx.cancel_active_deployments(env.id, Some(deployment.id), now)
            .await?;
        let mut deployment = deployment;
        deployment.start(now).map_err(unexpected)?;
        deployment.append_log(&format!(
            "[{}] attempt {attempt} by {}: {} deploying {} to namespace {}",
            now.to_rfc3339(),
            self.config.worker_id,
            self.provisioner.name(),
            deployment.commit_sha.short(),
            env.namespace
        ));
        tx.update_deployment(&deployment).await?;
        report(tx.as_mut(), &env, Some(&deployment)).await?;
        tx.commit().await?;
        Ok(Some(Plan::Deploy {
            request: self.request(&env, &deployment.commit_sha),
            deployment: deployment.id,
            attempt,
        }))
    }

    /// Runs the provisioner while renewing the lease; `None` when the lease
    /// was lost (the provisioner's future is dropped, which kills a
    /// command provisioner's process).
    async fn execute(
        &self,
        id: EnvironmentId,
        plan: &Plan,
    ) -> Option<Result<Done, ProvisionFailure>> {
        let work = async {
            match plan {
                Plan::Deploy { request, .. } => self
                    .provisioner
                    .provision(request)
                    .await
                    .map(Done::Provisioned),
                Plan::Destroy { request, .. } => {
                    self.provisioner.destroy(request).await.map(Done::Destroyed)
                }
            }
        };
        let heartbeat = async {
            let every = self.config.lease / 3;
            loop {
                tokio::time::sleep(every).await;
                let until = self.clock.now()
                    + chrono::Duration::from_std(self.config.lease)
                        .unwrap_or(chrono::Duration::MAX);
                match self.queue.renew(id, &self.config.worker_id, until).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(err) => {
                        tracing::warn!(environment = %id, error = %err, "lease renewal failed; retrying")
                    }
                }
            }
        };
        let started = std::time::Instant::now();
        let result = tokio::select! {
            result = work => Some(result),
            () = heartbeat => None,
        };
        if let Some(result) = &result {
            let action = match plan {
                Plan::Deploy { .. } => "provision",
                Plan::Destroy { .. } => "destroy",
            };
            let outcome = if result.is_ok() { "ok" } else { "error" };
            self.observer.observe(
                self.provisioner.name(),
                action,
                outcome,
                started.elapsed().as_secs_f64(),
            );
        }
        result
    }

    /// Records the result against the environment as it is now.
    async fn record(
        &self,
        id: EnvironmentId,
        plan: Plan,
        result: Result<Done, ProvisionFailure>,
    ) -> Result<RunOutcome, ReconcileError> {
        let now = self.clock.now();
        let mut tx = self.queue.begin().await?;
        let Some(mut env) = tx.environment(id).await? else {
            return Ok(RunOutcome::NothingToDo(id));
        };
        if !tx.holds_lease(id, &self.config.worker_id).await? {
            // Another worker took over (our lease ran out): its result wins.
            tracing::warn!(environment = %id, "lease lost before recording; result dropped");
            return Ok(RunOutcome::LeaseLost(id));
        }
        let outcome = match plan {
            Plan::Deploy {
                deployment,
                attempt,
                ..
            } => {
                let result = match result {
                    Ok(Done::Provisioned(p)) => Ok(p),
                    Ok(Done::Destroyed(_)) => {
                        return Err(unexpected("a destroy answered a deploy"));
                    }
                    Err(f) => Err(f),
                };
                let mut dep = tx
                    .deployment(deployment)
                    .await?
                    .ok_or_else(|| unexpected(format!("deployment {deployment} vanished")))?;
                let outcome = self
                    .record_deploy(tx.as_mut(), &mut env, &mut dep, attempt, result, now)
                    .await?;
                report(tx.as_mut(), &env, Some(&dep)).await?;
                outcome
            }
            Plan::Destroy { attempt, .. } => {
                let outcome = self
                    .record_destroy(tx.as_mut(), &mut env, attempt, result, now)
                    .await?;
                if !matches!(
                    outcome,
                    RunOutcome::Retrying { .. }
                        | RunOutcome::NothingToDo(_)
                        | RunOutcome::DestroyInProgress { .. }
                ) {
                    report(tx.as_mut(), &env, None).await?;
                }
                outcome
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn record_deploy(
        &self,
        tx: &mut dyn WorkTx,
        env: &mut Environment,
        dep: &mut Deployment,
        attempt: u32,
        result: Result<Provisioned, ProvisionFailure>,
        now: DateTime<Utc>,
    ) -> Result<RunOutcome, ReconcileError> {
        let id = env.id;
        let logs = match &result {
            Ok(p) => p.logs.clone(),
            Err(f) => f.logs.clone(),
        };
        let failure = result;
        if !logs.is_empty() {
            dep.append_log(&logs);
        }

        let destroying = !env.is_live();
        if destroying || tx.newer_queued(id, dep.id).await? {
            let why = if destroying {
                "the environment is being destroyed"
            } else {
                "superseded by a newer commit"
            };
            dep.cancel(why, now).map_err(unexpected)?;
            tx.update_deployment(dep).await?;
            env.schedule_work(now);
            tx.update_environment(env).await?;
            return Ok(RunOutcome::Superseded(id));
        }

        match failure {
            Ok(provisioned) => {
                dep.succeed(&provisioned.url, now).map_err(unexpected)?;
                env.mark_ready(provisioned.url, now).map_err(unexpected)?;
                tx.update_deployment(dep).await?;
                tx.update_environment(env).await?;
                Ok(RunOutcome::Ready(id))
            }
            Err(failure) => {
                if attempt < self.config.max_attempts {
                    let after = self.backoff(id, attempt);
                    dep.note_retry(attempt, &failure.message, after, now);
                    env.retry_at(later(now, after), attempt, failure.message, now);
                    tx.update_deployment(dep).await?;
                    tx.update_environment(env).await?;
                    Ok(RunOutcome::Retrying { id, attempt, after })
                } else {
                    dep.give_up(attempt, failure.message.clone(), now)
                        .map_err(unexpected)?;
                    env.fail(
                        failure.message,
                        format!("deployment failed after {attempt} attempts"),
                        now,
                    )
                    .map_err(unexpected)?;
                    tx.update_deployment(dep).await?;
                    tx.update_environment(env).await?;
                    Ok(RunOutcome::Failed(id))
                }
            }
        }
    }

    async fn record_destroy(
        &self,
        tx: &mut dyn WorkTx,
        env: &mut Environment,
        attempt: u32,
        result: Result<Done, ProvisionFailure>,
        now: DateTime<Utc>,
    ) -> Result<RunOutcome, ReconcileError> {
        let id = env.id;
        if env.status() != EnvironmentStatus::Destroying {
            return Ok(RunOutcome::NothingToDo(id));
        }
        match result {
            Ok(Done::Destroyed(Teardown::InProgress { logs, recheck })) => {
                // Not a failed attempt: the attempts count stays as it is,
                // and so does the status until the provisioner says gone.
                tracing::info!(environment = %id, logs = %logs, recheck = ?recheck, "destroy under way; looking again later");
                env.recheck_at(later(now, recheck));
                tx.update_environment(env).await?;
                Ok(RunOutcome::DestroyInProgress { id, recheck })
            }
            Ok(done) => {
                if let Done::Destroyed(Teardown::Gone { logs }) = done {
                    tracing::info!(environment = %id, logs = %logs, "provisioner destroyed the environment");
                }
                env.mark_destroyed(now).map_err(unexpected)?;
                // A deployment queued while the destroy ran (the PR was
                // reopened or pushed to) brings the environment straight
                // back, same record and namespace; anything older is
                // superseded.
                let wanted = tx
                    .active_deployment(id)
                    .await?
                    .filter(|d| d.status() == DeploymentStatus::Queued);
                tx.cancel_active_deployments(id, wanted.as_ref().map(|d| d.id), now)
                    .await?;
                if wanted.is_some() {
                    env.revive(now).map_err(unexpected)?;
                }
                tx.update_environment(env).await?;
                Ok(RunOutcome::Destroyed(id))
            }
            Err(failure) if attempt < self.config.max_attempts => {
                let after = self.backoff(id, attempt);
                let error = format!("destroy attempt {attempt} failed: {}", failure.message);
                env.retry_at(later(now, after), attempt, error, now);
                tx.update_environment(env).await?;
                Ok(RunOutcome::Retrying { id, attempt, after })
            }
            Err(failure) => {
                env.fail(
                    failure.message,
                    format!(
                        "destroy failed after {attempt} attempts; DELETE the environment to try again"
                    ),
                    now,
                )
                .map_err(unexpected)?;
                tx.update_environment(env).await?;
                Ok(RunOutcome::Failed(id))
            }
        }
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
) -> Result<(), RepositoryError> {
    match ephemera_domain::PreviewReport::of(env, deployment) {
        Some(r) => tx.report(r).await,
        None => Ok(()),
    }
}

/// Nothing more to do for now.
async fn settle(tx: &mut dyn WorkTx, env: &mut Environment) -> Result<(), RepositoryError> {
    env.settle();
    tx.update_environment(env).await
}

/// `after` from `now`.
fn later(now: DateTime<Utc>, after: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(after).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use ephemera_domain::{
        DeploymentRecord, EnvironmentRecord, Namespace, PrNumber, RepositoryFullName,
    };

    use super::*;
    use crate::ports::{MockClock, MockProvisioner, MockWorkQueue, MockWorkTx};

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    fn environment(status: EnvironmentStatus, work_attempts: u32) -> Environment {
        let repository = RepositoryFullName::parse("octo/web").unwrap();
        let pr_number = PrNumber::new(4).unwrap();
        Environment::rehydrate(EnvironmentRecord {
            id: EnvironmentId::new(9).unwrap(),
            namespace: Namespace::for_pr(&repository, pr_number),
            repository,
            repository_id: None,
            pr_number,
            pr_title: "t".into(),
            branch_name: "b".into(),
            commit_sha: CommitSha::parse(&"c".repeat(40)).unwrap(),
            environment_url: None,
            status,
            installation_id: None,
            owner: None,
            error_message: None,
            status_reason: None,
            last_deployed_at: None,
            pr_updated_at: None,
            created_at: at(0),
            updated_at: at(0),
            destroyed_at: None,
            work_due_at: Some(at(0)),
            work_attempts,
            trusted_sha: None,
            is_fork: false,
            draft: false,
            labels: Vec::new(),
        })
    }

    fn deployment(status: DeploymentStatus) -> Deployment {
        Deployment::rehydrate(DeploymentRecord {
            id: DeploymentId::new(5).unwrap(),
            environment_id: EnvironmentId::new(9).unwrap(),
            commit_sha: CommitSha::parse(&"c".repeat(40)).unwrap(),
            commit_message: None,
            status,
            started_at: None,
            completed_at: None,
            error_message: None,
            logs: String::new(),
            created_at: at(0),
            updated_at: at(0),
        })
    }

    type Store = Arc<Mutex<(Environment, Deployment)>>;

    /// A transaction over one environment and one deployment, kept in
    /// `store` so that what one step writes the next step reads.
    fn tx(store: &Store) -> MockWorkTx {
        let mut tx = MockWorkTx::new();
        let s = store.clone();
        tx.expect_environment()
            .returning(move |_| Ok(Some(s.lock().unwrap().0.clone())));
        let s = store.clone();
        tx.expect_active_deployment().returning(move |_| {
            let d = s.lock().unwrap().1.clone();
            Ok((!d.status().is_finished()).then_some(d))
        });
        let s = store.clone();
        tx.expect_deployment()
            .returning(move |_| Ok(Some(s.lock().unwrap().1.clone())));
        tx.expect_newer_queued().returning(|_, _| Ok(false));
        tx.expect_holds_lease().returning(|_, _| Ok(true));
        tx.expect_cancel_active_deployments()
            .returning(|_, _, _| Ok(0));
        let s = store.clone();
        tx.expect_update_environment().returning(move |e| {
            s.lock().unwrap().0 = e.clone();
            Ok(())
        });
        let s = store.clone();
        tx.expect_update_deployment().returning(move |d| {
            s.lock().unwrap().1 = d.clone();
            Ok(())
        });
        tx.expect_cancel_queued_deployments()
            .returning(|_, _| Ok(0));
        tx.expect_commit().returning(|| Ok(()));
        tx
    }

    fn reconciler(store: &Store, provisioner: MockProvisioner, max_attempts: u32) -> Reconciler {
        let mut queue = MockWorkQueue::new();
        queue
            .expect_claim()
            .times(1)
            .returning(|_, _, _| Ok(Some(EnvironmentId::new(9).unwrap())));
        queue.expect_release().times(1).returning(|_, _| Ok(()));
        queue.expect_renew().returning(|_, _, _| Ok(true));
        let s = store.clone();
        queue
            .expect_begin()
            .returning(move || Ok(Box::new(tx(&s)) as Box<dyn WorkTx>));
        let mut clock = MockClock::new();
        clock.expect_now().returning(|| at(100));
        Reconciler::new(
            Arc::new(queue),
            Arc::new(provisioner),
            Arc::new(clock),
            config(max_attempts),
        )
    }

    fn config(max_attempts: u32) -> ReconcilerConfig {
        ReconcilerConfig {
            worker_id: "test-worker".into(),
            lease: Duration::from_secs(30),
            max_attempts,
            retry_base: Duration::from_secs(10),
            retry_max: Duration::from_secs(60),
            poll: Duration::from_millis(10),
            preview_url: PreviewUrlTemplate::default(),
        }
    }

    fn provisioner(result: Result<Provisioned, ProvisionFailure>) -> MockProvisioner {
        let mut p = MockProvisioner::new();
        p.expect_name().return_const("mock");
        p.expect_provision().times(1).returning(move |req| {
            assert_eq!(
                req.preview_url,
                format!("http://{}.preview.localhost", req.namespace)
            );
            result.clone()
        });
        p
    }

    #[tokio::test]
    async fn nothing_due_is_idle() {
        let mut queue = MockWorkQueue::new();
        queue.expect_claim().returning(|_, _, _| Ok(None));
        queue.expect_begin().never();
        let mut clock = MockClock::new();
        clock.expect_now().returning(|| at(0));
        let r = Reconciler::new(
            Arc::new(queue),
            Arc::new(MockProvisioner::new()),
            Arc::new(clock),
            config(1),
        );
        assert_eq!(r.run_once().await.unwrap(), RunOutcome::Idle);
    }

    #[tokio::test]
    async fn a_pending_environment_is_provisioned_and_ready() {
        let store: Store = Arc::new(Mutex::new((
            environment(EnvironmentStatus::Pending, 0),
            deployment(DeploymentStatus::Queued),
        )));
        let p = provisioner(Ok(Provisioned {
            url: "https://x.example".into(),
            logs: "created".into(),
        }));

        let outcome = reconciler(&store, p, 3).run_once().await.unwrap();

        assert_eq!(outcome, RunOutcome::Ready(EnvironmentId::new(9).unwrap()));
        let (env, dep) = store.lock().unwrap().clone();
        assert_eq!(env.status(), EnvironmentStatus::Ready);
        assert_eq!(env.environment_url(), Some("https://x.example"));
        assert_eq!(
            (env.work_due_at(), env.last_deployed_at()),
            (None, Some(at(100)))
        );
        assert_eq!(dep.status(), DeploymentStatus::Success);
        assert!(
            dep.logs()
                .contains("attempt 1 by test-worker: mock deploying ccccccc"),
            "{}",
            dep.logs()
        );
        assert!(dep.logs().contains("created\n"));
    }

    #[tokio::test]
    async fn a_failed_attempt_is_retried_later() {
        let store: Store = Arc::new(Mutex::new((
            environment(EnvironmentStatus::Pending, 0),
            deployment(DeploymentStatus::Queued),
        )));
        let p = provisioner(Err(ProvisionFailure {
            message: "quota exceeded".into(),
            logs: "trying".into(),
        }));

        let outcome = reconciler(&store, p, 3).run_once().await.unwrap();

        let RunOutcome::Retrying { attempt, after, .. } = outcome else {
            panic!("expected a retry, got {outcome:?}");
        };
        assert_eq!(attempt, 1);
        assert!(
            after >= Duration::from_secs(8) && after <= Duration::from_secs(12),
            "{after:?}"
        );
        let (env, dep) = store.lock().unwrap().clone();
        assert_eq!(
            env.status(),
            EnvironmentStatus::Provisioning,
            "still on its way"
        );
        assert_eq!(env.work_attempts(), 1);
        assert_eq!(env.error_message(), Some("quota exceeded"));
        assert!(env.work_due_at().unwrap() > at(100));
        assert_eq!(dep.status(), DeploymentStatus::InProgress);
    }

    #[tokio::test]
    async fn the_last_attempt_fails_the_environment_and_keeps_the_logs() {
        let env = environment(EnvironmentStatus::Provisioning, 2);
        let dep = deployment(DeploymentStatus::InProgress);
        let store: Store = Arc::new(Mutex::new((env, dep)));
        let p = provisioner(Err(ProvisionFailure {
            message: "image not found".into(),
            logs: "pulling".into(),
        }));

        let outcome = reconciler(&store, p, 3).run_once().await.unwrap();

        assert_eq!(outcome, RunOutcome::Failed(EnvironmentId::new(9).unwrap()));
        let (env, dep) = store.lock().unwrap().clone();
        assert_eq!(env.status(), EnvironmentStatus::Failed);
        assert_eq!(env.work_due_at(), None);
        assert_eq!(dep.status(), DeploymentStatus::Failed);
        assert_eq!(dep.error_message(), Some("image not found"));
        assert!(
            dep.logs().contains("pulling") && dep.logs().contains("giving up"),
            "{}",
            dep.logs()
        );
    }

    #[tokio::test]
    async fn a_destroy_under_way_is_rechecked_without_using_up_attempts() {
        let env = environment(EnvironmentStatus::Destroying, 2);
        let dep = deployment(DeploymentStatus::Success);
        let store: Store = Arc::new(Mutex::new((env, dep)));
        let destroyer = |teardown: Teardown| {
            let mut p = MockProvisioner::new();
            p.expect_name().return_const("mock");
            p.expect_destroy()
                .times(1)
                .returning(move |_| Ok(teardown.clone()));
            p
        };
        let id = EnvironmentId::new(9).unwrap();
        let recheck = Duration::from_secs(5);

        // More checks than attempts are left: none of them counts.
        for _ in 0..3 {
            let terminating = destroyer(Teardown::InProgress {
                logs: "namespace terminating".into(),
                recheck,
            });
            let outcome = reconciler(&store, terminating, 3).run_once().await.unwrap();
            assert_eq!(outcome, RunOutcome::DestroyInProgress { id, recheck });
            let (env, _) = store.lock().unwrap().clone();
            assert_eq!(env.status(), EnvironmentStatus::Destroying);
            assert_eq!(env.work_attempts(), 2, "no attempt used up");
            assert_eq!(env.work_due_at(), Some(at(105)));
        }

        let gone = destroyer(Teardown::Gone {
            logs: "namespace gone".into(),
        });
        let outcome = reconciler(&store, gone, 3).run_once().await.unwrap();
        assert_eq!(outcome, RunOutcome::Destroyed(id));
        let (env, _) = store.lock().unwrap().clone();
        assert_eq!(env.status(), EnvironmentStatus::Destroyed);
        assert_eq!((env.work_due_at(), env.work_attempts()), (None, 0));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let r = Reconciler::new(
            Arc::new(MockWorkQueue::new()),
            Arc::new(MockProvisioner::new()),
            Arc::new(MockClock::new()),
            config(9),
        );
        let id = EnvironmentId::new(9).unwrap();
        for (attempt, base) in [(1, 10.0), (2, 20.0), (3, 40.0), (4, 60.0), (8, 60.0)] {
            let after = r.backoff(id, attempt).as_secs_f64();
            assert!(
                after >= base * 0.8 && after <= base * 1.2,
                "attempt {attempt}: {after}"
            );
        }
        let spread: std::collections::HashSet<_> = (1..50)
            .map(|n| r.backoff(EnvironmentId::new(n).unwrap(), 1).as_millis())
            .collect();
        assert!(spread.len() > 10, "environments do not retry in lockstep");
    }
}
