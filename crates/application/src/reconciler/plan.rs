//! Planning a step: under the environment's row lock, decide what is due
//! (deploy its newest wanted commit, or destroy it) and mark it started.
//! Each plan names the provisioner's answer it is recorded with.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ephemera_domain::{
    Admission, CommitSha, Deployment, DeploymentId, DueWork, Environment, EnvironmentId,
    EnvironmentStatus, NewDeployment, ResolvedConfig, admit,
};

use super::gate::{Gate, Verdict};
use super::record::later;
use super::{ReconcileError, Reconciler, RunOutcome, report};
use crate::ports::{
    CapScope, ProvisionFailure, ProvisionRequest, Provisioned, RepositoryError, Stopped, Teardown,
    WorkTx,
};
use crate::repo_config::FileOrigin;

/// A preview waiting for a slot is looked at again this often; a freed
/// slot wakes the first in line sooner.
const WAITING_RECHECK: Duration = Duration::from_secs(60);

/// The longest wait before the rules are read again after GitHub failed.
const RULES_RETRY_MAX: Duration = Duration::from_secs(60);

/// What a worker is about to do.
#[derive(Debug, Clone)]
pub(super) enum Plan {
    Deploy(DeployPlan),
    Destroy(DestroyPlan),
    Stop(SleepPlan),
    Start(SleepPlan),
}

/// Put the environment to sleep (answered by a [`StopResult`]) or wake it
/// (answered by a [`StartResult`]): which one, the [`Plan`] variant says.
#[derive(Debug, Clone)]
pub(super) struct SleepPlan {
    pub(super) request: ProvisionRequest,
    pub(super) attempt: u32,
}

/// The provisioner's answer to a [`Plan::Stop`].
pub(super) type StopResult = Result<Stopped, ProvisionFailure>;

/// The provisioner's answer to a [`Plan::Start`].
pub(super) type StartResult = Result<Provisioned, ProvisionFailure>;

/// What planning came to: a step for the provisioner, or an outcome
/// reached without one (nothing due, skipped by the rules, waiting…).
#[derive(Debug, Clone)]
pub(super) enum Step {
    Run(Plan),
    Done(RunOutcome),
}

/// Roll deployment `deployment` out; answered by a [`DeployResult`].
#[derive(Debug, Clone)]
pub(super) struct DeployPlan {
    pub(super) request: ProvisionRequest,
    pub(super) deployment: DeploymentId,
    pub(super) attempt: u32,
}

/// Tear the environment down; answered by a [`DestroyResult`].
#[derive(Debug, Clone)]
pub(super) struct DestroyPlan {
    pub(super) request: ProvisionRequest,
    pub(super) attempt: u32,
}

/// The provisioner's answer to a [`DeployPlan`].
pub(super) type DeployResult = Result<Provisioned, ProvisionFailure>;

/// The provisioner's answer to a [`DestroyPlan`].
pub(super) type DestroyResult = Result<Teardown, ProvisionFailure>;

impl Reconciler {
    /// Decides what to do and marks it started, in one transaction;
    /// `gate` is what the repository's rules said about the commit.
    pub(super) async fn plan(
        &self,
        id: EnvironmentId,
        gate: Option<Gate>,
    ) -> Result<Step, ReconcileError> {
        let now = self.clock.now();
        let nothing = Ok(Step::Done(RunOutcome::NothingToDo(id)));
        let mut tx = self.queue.begin().await?;
        let Some(mut env) = tx.environment(id).await? else {
            return nothing;
        };
        if !tx.holds_lease(id, &self.config.worker_id).await? {
            return nothing;
        }
        let attempt = env.next_attempt();
        match env.due_work() {
            DueWork::Settle => {
                settle(tx.as_mut(), &mut env).await?;
                tx.commit().await?;
                return nothing;
            }
            DueWork::Destroy => {
                let request = self.request(&env, &env.commit_sha);
                tx.commit().await?;
                return Ok(Step::Run(Plan::Destroy(DestroyPlan { request, attempt })));
            }
            DueWork::Stop | DueWork::Start => {
                let plan = SleepPlan {
                    request: self.request(&env, &env.commit_sha),
                    attempt,
                };
                tx.commit().await?;
                return Ok(Step::Run(if env.due_work() == DueWork::Stop {
                    Plan::Stop(plan)
                } else {
                    Plan::Start(plan)
                }));
            }
            DueWork::Deploy => {}
        }

        let mut deployment = match tx.active_deployment(env.id).await? {
            Some(d) => d,
            None if env.awaits_deployment() => {
                let new = NewDeployment {
                    delivery_id: None,
                    environment_id: env.id,
                    commit_sha: env.commit_sha.clone(),
                    commit_message: None,
                };
                tx.queue_deployment(new, now).await?
            }
            None => {
                settle(tx.as_mut(), &mut env).await?;
                tx.commit().await?;
                return nothing;
            }
        };
        let mut variables = BTreeMap::new();
        if let Some(gate) = gate {
            if gate.commit != deployment.commit_sha {
                // A newer commit came in while the rules were read: the
                // environment stays due and its rules are read again.
                return nothing;
            }
            match self
                .apply_gate(tx.as_mut(), &mut env, &mut deployment, gate.verdict, now)
                .await?
            {
                Ok(granted) => variables = granted,
                Err(outcome) => {
                    tx.commit().await?;
                    return Ok(Step::Done(outcome));
                }
            }
        }
        let before = env.status();
        let left_the_line = before == EnvironmentStatus::Waiting;
        env.begin_deploy(now)?;
        if env.status() != before {
            tx.update_environment(&env).await?;
        }
        // Only the newest wanted deployment runs; any older one (queued, or
        // left in progress by a failed attempt) is superseded.
        tx.cancel_active_deployments(env.id, Some(deployment.id), now)
            .await?;
        deployment.start(now)?;
        deployment.append_log(&format!(
            "[{}] attempt {attempt} by {}: {} deploying {} to namespace {}",
            now.to_rfc3339(),
            self.config.worker_id,
            self.provisioner.name(),
            deployment.commit_sha.short(),
            env.namespace
        ));
        tx.update_deployment(&deployment).await?;
        report(tx.as_mut(), &env, Some(&deployment), now).await?;
        tx.commit().await?;
        if left_the_line {
            self.wake_next(&env, now).await;
        }
        let mut request = self.request(&env, &deployment.commit_sha);
        request.variables = variables;
        Ok(Step::Run(Plan::Deploy(DeployPlan {
            request,
            deployment: deployment.id,
            attempt,
        })))
    }

    /// Carries out the rules' verdict on the deployment about to start:
    /// `Ok` with the variables it runs with, or the outcome that ends the
    /// step (skipped, refused, waiting, looked at again later).
    async fn apply_gate(
        &self,
        tx: &mut dyn WorkTx,
        env: &mut Environment,
        deployment: &mut Deployment,
        verdict: Verdict,
        now: DateTime<Utc>,
    ) -> Result<Result<BTreeMap<String, String>, RunOutcome>, ReconcileError> {
        let id = env.id;
        let was_waiting = env.status() == EnvironmentStatus::Waiting;
        let (resolved, origin) = match verdict {
            Verdict::Open { resolved, origin } => (resolved, origin),
            Verdict::Skip(reason) => {
                deployment.skip(&reason, now)?;
                return self
                    .skip(tx, env, deployment, &reason, was_waiting, now)
                    .await;
            }
            Verdict::Invalid(reason) => {
                deployment.refuse(reason.clone(), now)?;
                return self
                    .skip(tx, env, deployment, &reason, was_waiting, now)
                    .await;
            }
            Verdict::Unavailable(why) => {
                tracing::warn!(environment = %id, error = %why, "rules not read; looking again later");
                let after = self.config.retry_max.min(RULES_RETRY_MAX);
                env.recheck_at(later(now, after));
                tx.update_environment(env).await?;
                return Ok(Err(RunOutcome::RulesUnavailable { id, after }));
            }
        };
        env.idle_ttl = resolved.rules.ttl;
        env.sleep_after = resolved.rules.sleep_after;
        env.config_notes.clone_from(&resolved.refused);
        if env.needs_slot()
            && let Admission::Wait(reason) = self.admission(tx, env, &resolved).await?
        {
            let news = env.status_reason() != Some(reason.as_str());
            // The time it joins the line is read under the admission's
            // lock: `now` was read before it, and an admission that waited
            // for the lock would otherwise take a place ahead of those that
            // held it, while its reason counts them as ahead.
            let joined = self.clock.now().max(now);
            env.wait_for_slot(reason, later(joined, WAITING_RECHECK), joined)?;
            tx.update_environment(env).await?;
            if news {
                report(tx, env, None, now).await?;
            }
            return Ok(Err(RunOutcome::Waiting(id)));
        }
        deployment.append_log(&format!("[{}] {}", now.to_rfc3339(), rules_line(&origin)));
        for refused in &resolved.refused {
            deployment.append_log(&format!("[{}] refused: {refused}", now.to_rfc3339()));
        }
        Ok(Ok(resolved.rules.env))
    }

    /// The rules give the deployment's commit no preview (`reason`); the
    /// deployment is already cancelled or refused.
    async fn skip(
        &self,
        tx: &mut dyn WorkTx,
        env: &mut Environment,
        deployment: &Deployment,
        reason: &str,
        was_waiting: bool,
        now: DateTime<Utc>,
    ) -> Result<Result<BTreeMap<String, String>, RunOutcome>, ReconcileError> {
        tx.update_deployment(deployment).await?;
        if let Some(delivery) = &deployment.delivery_id {
            // The delivery that asked for it says what became of it.
            let note = format!(
                "deployment of {} not started: {reason}",
                deployment.commit_sha.short()
            );
            tx.note_delivery(delivery, &note).await?;
        }
        env.skip(&deployment.commit_sha, &reason, now)?;
        tx.update_environment(env).await?;
        if was_waiting {
            // It leaves the line: whoever was behind it may start.
            tx.wake_waiting(env, now).await?;
        }
        report(tx, env, Some(deployment), now).await?;
        Ok(Err(RunOutcome::Skipped(env.id)))
    }

    /// `env` left the line with a slot: whoever is next in line looks
    /// again now, since another slot may be free too (a destroy wakes only
    /// the first in line, so two slots freed together would otherwise
    /// leave the second idle until the waiting recheck). In its own
    /// transaction, after the admission's lock is released, so that it
    /// never waits on a row held by an admission waiting on that lock;
    /// if it fails, the recheck still comes.
    async fn wake_next(&self, env: &Environment, now: DateTime<Utc>) {
        let woken = async {
            let mut tx = self.queue.begin().await?;
            tx.wake_waiting(env, now).await?;
            tx.commit().await
        };
        if let Err(err) = woken.await {
            tracing::warn!(environment = %env.id, error = %err, "next in line not woken; it rechecks later");
        }
    }

    /// Whether `env` may start now under the repository's and the
    /// installation's caps.
    async fn admission(
        &self,
        tx: &mut dyn WorkTx,
        env: &Environment,
        resolved: &ResolvedConfig,
    ) -> Result<Admission, ReconcileError> {
        let per_installation = self
            .configs
            .as_ref()
            .and_then(|c| c.settings().max_active_per_installation);
        let repository = tx.slot_use(env, CapScope::Repository).await?;
        let installation = tx.slot_use(env, CapScope::Installation).await?;
        Ok(admit(&[
            (
                CapScope::Repository.as_str(),
                resolved.rules.max_active,
                repository,
            ),
            (
                CapScope::Installation.as_str(),
                per_installation,
                installation,
            ),
        ]))
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
            variables: BTreeMap::new(),
            preview_url: self.config.preview_url.render(
                &env.namespace,
                &env.repository,
                env.pr_number,
            ),
        }
    }
}

/// Nothing more to do for now.
async fn settle(tx: &mut dyn WorkTx, env: &mut Environment) -> Result<(), RepositoryError> {
    env.settle();
    tx.update_environment(env).await
}

/// Where the rules a deployment runs under came from, for its log.
fn rules_line(origin: &FileOrigin) -> String {
    match origin {
        FileOrigin::Defaults(why) => format!("rules: this server's defaults ({why})"),
        FileOrigin::File { git_ref, blob_sha } => format!(
            "rules: {} at {git_ref} (blob {})",
            crate::repo_config::CONFIG_PATH,
            &blob_sha[..blob_sha.len().min(12)]
        ),
    }
}
