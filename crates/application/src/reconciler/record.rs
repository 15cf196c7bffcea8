//! Recording a step: the provisioner's answer is written against the
//! environment as it is *now*, under its row lock — a webhook may have
//! queued a newer commit or asked for a destroy while the provisioner ran.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ephemera_domain::{
    Deployment, DeploymentStatus, Environment, EnvironmentId, EnvironmentStatus,
};

use super::plan::{
    DeployPlan, DeployResult, DestroyPlan, DestroyResult, SleepPlan, StartResult, StopResult,
};
use super::{ReconcileError, Reconciler, RunOutcome, report, unexpected};
use crate::ports::{Teardown, WorkTx};

/// The transaction a result is recorded in, with the environment as it is
/// now; or why nothing is recorded.
type Recording = Result<(Box<dyn WorkTx>, Environment), RunOutcome>;

impl Reconciler {
    /// Records a deployment's result.
    pub(super) async fn record_deploy(
        &self,
        id: EnvironmentId,
        plan: DeployPlan,
        result: DeployResult,
    ) -> Result<RunOutcome, ReconcileError> {
        let now = self.clock.now();
        let (mut tx, mut env) = match self.recording(id).await? {
            Ok(open) => open,
            Err(outcome) => return Ok(outcome),
        };
        let mut dep = tx
            .deployment(plan.deployment)
            .await?
            .ok_or_else(|| unexpected(format!("deployment {} vanished", plan.deployment)))?;
        let outcome = self
            .apply_deploy(tx.as_mut(), &mut env, &mut dep, plan.attempt, result, now)
            .await?;
        report(tx.as_mut(), &env, Some(&dep), now).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Records a destroy's result.
    pub(super) async fn record_destroy(
        &self,
        id: EnvironmentId,
        plan: DestroyPlan,
        result: DestroyResult,
    ) -> Result<RunOutcome, ReconcileError> {
        let now = self.clock.now();
        let (mut tx, mut env) = match self.recording(id).await? {
            Ok(open) => open,
            Err(outcome) => return Ok(outcome),
        };
        let outcome = self
            .apply_destroy(tx.as_mut(), &mut env, plan.attempt, result, now)
            .await?;
        if !matches!(
            outcome,
            RunOutcome::Retrying { .. }
                | RunOutcome::NothingToDo(_)
                | RunOutcome::DestroyInProgress { .. }
        ) {
            report(tx.as_mut(), &env, None, now).await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    /// Records a stop's result: asleep, or the attempt failed.
    pub(super) async fn record_stop(
        &self,
        id: EnvironmentId,
        plan: SleepPlan,
        result: StopResult,
    ) -> Result<RunOutcome, ReconcileError> {
        self.record_sleep_step(id, EnvironmentStatus::Stopping, plan, |env, now| {
            let stopped = result?;
            tracing::info!(environment = %env.id, logs = %stopped.logs, "provisioner stopped the environment");
            Ok(env.mark_asleep(now).map(|()| RunOutcome::Asleep(env.id)))
        })
        .await
    }

    /// Records a start's result: ready again, or the attempt failed.
    pub(super) async fn record_start(
        &self,
        id: EnvironmentId,
        plan: SleepPlan,
        result: StartResult,
    ) -> Result<RunOutcome, ReconcileError> {
        self.record_sleep_step(id, EnvironmentStatus::Waking, plan, |env, now| {
            let started = result?;
            tracing::info!(environment = %env.id, logs = %started.logs, "provisioner woke the environment");
            Ok(env
                .mark_ready(started.url, now)
                .map(|()| RunOutcome::Ready(env.id)))
        })
        .await
    }

    /// Records a stop or a start (`during`: the status it runs in) with
    /// `apply`, which moves the environment on success or hands back the
    /// provisioner's failure; nothing is recorded when the environment
    /// moved on meanwhile (a push, a destroy).
    async fn record_sleep_step(
        &self,
        id: EnvironmentId,
        during: EnvironmentStatus,
        plan: SleepPlan,
        apply: impl FnOnce(
            &mut Environment,
            DateTime<Utc>,
        ) -> Result<
            Result<RunOutcome, ephemera_domain::InvalidTransition>,
            crate::ports::ProvisionFailure,
        >,
    ) -> Result<RunOutcome, ReconcileError> {
        let now = self.clock.now();
        let (mut tx, mut env) = match self.recording(id).await? {
            Ok(open) => open,
            Err(outcome) => return Ok(outcome),
        };
        if env.status() != during {
            return Ok(RunOutcome::NothingToDo(id));
        }
        let outcome = match apply(&mut env, now) {
            Ok(moved) => moved?,
            Err(failure) => {
                let action = if during == EnvironmentStatus::Stopping {
                    "sleep"
                } else {
                    "wake"
                };
                self.attempt_failed(&mut env, plan.attempt, action, failure.message, "", now)?
            }
        };
        tx.update_environment(&env).await?;
        if !matches!(outcome, RunOutcome::Retrying { .. }) {
            report(tx.as_mut(), &env, None, now).await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    /// Attempt `attempt` at `action` failed with `error`: retried after a
    /// backoff, or, out of attempts, the environment is failed (its reason
    /// ending with `hint`).
    fn attempt_failed(
        &self,
        env: &mut Environment,
        attempt: u32,
        action: &str,
        error: String,
        hint: &str,
        now: DateTime<Utc>,
    ) -> Result<RunOutcome, ReconcileError> {
        let id = env.id;
        if attempt < self.config.max_attempts {
            let after = self.backoff(id, attempt);
            let error = format!("{action} attempt {attempt} failed: {error}");
            env.retry_at(later(now, after), attempt, error, now);
            return Ok(RunOutcome::Retrying { id, attempt, after });
        }
        let why = format!("{action} failed after {attempt} attempts{hint}");
        env.fail(error, why, now)?;
        Ok(RunOutcome::Failed(id))
    }

    /// Opens the transaction a result is recorded in, unless the
    /// environment is gone or another worker holds it now.
    async fn recording(&self, id: EnvironmentId) -> Result<Recording, ReconcileError> {
        let mut tx = self.queue.begin().await?;
        let Some(env) = tx.environment(id).await? else {
            return Ok(Err(RunOutcome::NothingToDo(id)));
        };
        if !tx.holds_lease(id, &self.config.worker_id).await? {
            // Another worker took over (our lease ran out): its result wins.
            tracing::warn!(environment = %id, "lease lost before recording; result dropped");
            return Ok(Err(RunOutcome::LeaseLost(id)));
        }
        Ok(Ok((tx, env)))
    }

    async fn apply_deploy(
        &self,
        tx: &mut dyn WorkTx,
        env: &mut Environment,
        dep: &mut Deployment,
        attempt: u32,
        result: DeployResult,
        now: DateTime<Utc>,
    ) -> Result<RunOutcome, ReconcileError> {
        let id = env.id;
        let logs = match &result {
            Ok(p) => &p.logs,
            Err(f) => &f.logs,
        };
        if !logs.is_empty() {
            dep.append_log(logs);
        }

        let destroying = !env.is_live();
        if destroying || tx.newer_queued(id, dep.id).await? {
            let why = if destroying {
                "the environment is being destroyed"
            } else {
                "superseded by a newer commit"
            };
            dep.cancel(why, now)?;
            tx.update_deployment(dep).await?;
            env.schedule_work(now);
            tx.update_environment(env).await?;
            return Ok(RunOutcome::Superseded(id));
        }

        let outcome = match result {
            Ok(provisioned) => {
                dep.succeed(&provisioned.url, now)?;
                env.mark_ready(provisioned.url, now)?;
                RunOutcome::Ready(id)
            }
            Err(failure) if attempt < self.config.max_attempts => {
                let after = self.backoff(id, attempt);
                dep.note_retry(attempt, &failure.message, after, now);
                env.retry_at(later(now, after), attempt, failure.message, now);
                RunOutcome::Retrying { id, attempt, after }
            }
            Err(failure) => {
                dep.give_up(attempt, failure.message.clone(), now)?;
                let why = format!("deployment failed after {attempt} attempts");
                env.fail(failure.message, why, now)?;
                RunOutcome::Failed(id)
            }
        };
        tx.update_deployment(dep).await?;
        tx.update_environment(env).await?;
        Ok(outcome)
    }

    async fn apply_destroy(
        &self,
        tx: &mut dyn WorkTx,
        env: &mut Environment,
        attempt: u32,
        result: DestroyResult,
        now: DateTime<Utc>,
    ) -> Result<RunOutcome, ReconcileError> {
        let id = env.id;
        if env.status() != EnvironmentStatus::Destroying {
            return Ok(RunOutcome::NothingToDo(id));
        }
        let outcome = match result {
            Ok(Teardown::InProgress { logs, recheck }) => {
                // Not a failed attempt: the attempts count stays as it is,
                // and so does the status until the provisioner says gone.
                tracing::info!(environment = %id, logs = %logs, recheck = ?recheck, "destroy under way; looking again later");
                env.recheck_at(later(now, recheck));
                RunOutcome::DestroyInProgress { id, recheck }
            }
            Ok(Teardown::Gone { logs }) => {
                tracing::info!(environment = %id, logs = %logs, "provisioner destroyed the environment");
                env.mark_destroyed(now)?;
                // Its slot is free: the first preview waiting for one is
                // due now.
                tx.wake_waiting(env, now).await?;
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
                    env.revive(now)?;
                }
                RunOutcome::Destroyed(id)
            }
            Err(failure) => self.attempt_failed(
                env,
                attempt,
                "destroy",
                failure.message,
                "; DELETE the environment to try again",
                now,
            )?,
        };
        tx.update_environment(env).await?;
        Ok(outcome)
    }
}

/// `after` from `now`.
pub(super) fn later(now: DateTime<Utc>, after: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(after).unwrap_or_default()
}
