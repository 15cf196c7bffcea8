//! `pull_request` events: one decision per delivery (create, revive,
//! update, hold back or destroy the PR's environment) under the deploy
//! policy, taken by [`decision::decide`] from facts alone and carried out
//! here.

use chrono::{DateTime, Utc};
use ephemera_domain::{
    DeliveryId, Environment, GithubUser, InstallationId, NewDeployment, NewEnvironment, Owner,
    SkipReason,
};

use super::ApplyError;
use super::effects::{destroy_all, queue, report};
use super::{IncomingDelivery, IngestDelivery, IngestOutcome, PullRequestChange};
use crate::ports::WebhookTx;

mod decision;

use decision::{Change, Decision, Why, decide};

impl IngestDelivery {
    pub(super) async fn pull_request(
        &self,
        tx: &mut dyn WebhookTx,
        pr: &PullRequestChange,
        delivery: &IncomingDelivery,
        now: DateTime<Utc>,
    ) -> Result<IngestOutcome, ApplyError> {
        let (installation, sender) = (delivery.installation_id, delivery.sender.as_ref());
        let origin = &delivery.delivery_id;
        let stored = tx
            .environment_for_pr(Some(pr.repository_id), &pr.repository, pr.number)
            .await?;
        let status = match installation {
            Some(id) => tx.installation_status(id).await?,
            None => None,
        };
        match decide(stored, pr, status, &self.policy, sender) {
            Decision::Stale { applied } => Ok(IngestOutcome::ignored(format!(
                "stale: pull_request.updated_at {} is older than {} already applied",
                pr.updated_at.to_rfc3339(),
                applied.to_rfc3339()
            ))),
            Decision::ClosedWithoutEnvironment => {
                Ok(IngestOutcome::ignored("PR closed; it had no environment"))
            }
            Decision::NotDeployed(reason) => Ok(IngestOutcome::ignored(reason.to_string())),
            Decision::AwaitApproval(reason) => {
                let env = insert(tx, pr, installation, now).await?;
                await_approval(tx, env, &reason, origin, now).await
            }
            Decision::Create { vouch } => create(tx, pr, installation, vouch, origin, now).await,
            Decision::Stored(env, change) => {
                change_stored(tx, env, change, pr, installation, origin, now).await
            }
        }
    }
}

/// The PR's first environment, with a deployment of its head.
async fn create(
    tx: &mut dyn WebhookTx,
    pr: &PullRequestChange,
    installation: Option<InstallationId>,
    vouch: bool,
    origin: &DeliveryId,
    now: DateTime<Utc>,
) -> Result<IngestOutcome, ApplyError> {
    let mut env = insert(tx, pr, installation, now).await?;
    if vouch {
        env.trusted_sha = Some(pr.head_sha.clone());
        tx.update_environment(&env).await?;
    }
    queue(tx, &env, Some(origin), now).await?;
    Ok(IngestOutcome::applied(format!(
        "environment {} created in namespace {}; deployment of {} queued",
        env.id,
        env.namespace,
        env.commit_sha.short()
    )))
}

/// The head of `env`'s fork PR waits for a maintainer's approval: its
/// deployment is recorded skipped for `reason` (so the PR's comment, commit
/// status and check run say so and offer the approval), nothing runs.
async fn await_approval(
    tx: &mut dyn WebhookTx,
    mut env: Environment,
    reason: &SkipReason,
    origin: &DeliveryId,
    now: DateTime<Utc>,
) -> Result<IngestOutcome, ApplyError> {
    tx.cancel_queued_deployments(env.id, now).await?;
    let mut deployment = tx
        .queue_deployment(
            NewDeployment {
                environment_id: env.id,
                commit_sha: env.commit_sha.clone(),
                commit_message: None,
                delivery_id: Some(origin.clone()),
            },
            now,
        )
        .await?;
    let why = reason.to_string();
    deployment.skip(&why, now)?;
    tx.update_deployment(&deployment).await?;
    let head = env.commit_sha.clone();
    env.skip(&head, &why, now)?;
    tx.update_environment(&env).await?;
    report(tx, &env, Some(&deployment), now).await?;
    Ok(IngestOutcome::applied(format!(
        "{why}; environment {} waits for a maintainer's approval of {}",
        env.id,
        head.short()
    )))
}

/// Records the PR's first environment.
async fn insert(
    tx: &mut dyn WebhookTx,
    pr: &PullRequestChange,
    installation: Option<InstallationId>,
    now: DateTime<Utc>,
) -> Result<Environment, ApplyError> {
    Ok(tx
        .insert_environment(
            NewEnvironment {
                repository: pr.repository.clone(),
                repository_id: Some(pr.repository_id),
                pr_number: pr.number,
                pr_title: pr.title.clone(),
                branch_name: pr.head_ref.clone(),
                base_ref: pr.base_ref.clone(),
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
        .await?)
}

/// Carries out `change` on the PR's stored environment.
async fn change_stored(
    tx: &mut dyn WebhookTx,
    mut env: Environment,
    change: Change,
    pr: &PullRequestChange,
    installation: Option<InstallationId>,
    origin: &DeliveryId,
    now: DateTime<Utc>,
) -> Result<IngestOutcome, ApplyError> {
    let id = env.id;
    match change {
        Change::Destroy(why) => {
            match &why {
                Why::Policy(reason) => {
                    note_pr(&mut env, pr);
                    // The trusted label removed: every approval goes.
                    if reason.awaits_approval() {
                        env.trusted_sha = None;
                    }
                }
                Why::Closed { .. } => env.pr_updated_at = Some(pr.updated_at),
            }
            destroy_all(tx, vec![env], &why.to_string(), now).await?;
            Ok(IngestOutcome::applied(format!(
                "{why}; environment {id} destroying"
            )))
        }
        Change::AlreadyGone { merged } => {
            env.pr_updated_at = Some(pr.updated_at);
            tx.update_environment(&env).await?;
            Ok(IngestOutcome::ignored(format!(
                "{}; environment {id} is already {}",
                Why::Closed { merged },
                env.status()
            )))
        }
        Change::Hold { reason, tell } => {
            note_pr(&mut env, pr);
            if tell {
                env.hold_back(&pr.head_sha, &reason);
            }
            tx.update_environment(&env).await?;
            if tell {
                report(tx, &env, None, now).await?;
            }
            Ok(IngestOutcome::ignored(reason.to_string()))
        }
        Change::StayDestroyed => {
            env.pr_updated_at = Some(pr.updated_at);
            tx.update_environment(&env).await?;
            Ok(IngestOutcome::ignored(format!(
                "environment {id} is destroyed; a reopen or a new commit brings it back"
            )))
        }
        Change::RecreateAfterDestroy => {
            // The worker finds this queued deployment once the destroy
            // finishes and revives the record.
            refresh(&mut env, pr, installation, now);
            tx.update_environment(&env).await?;
            queue(tx, &env, Some(origin), now).await?;
            Ok(IngestOutcome::applied(format!(
                "environment {id} is being destroyed; it is recreated at {} right after",
                env.commit_sha.short()
            )))
        }
        Change::Revive { vouch } | Change::Deploy { vouch } => {
            let what = if matches!(change, Change::Revive { .. }) {
                env.revive(now)?;
                "revived"
            } else {
                "updated"
            };
            refresh(&mut env, pr, installation, now);
            vouch_for_head(&mut env, pr, vouch);
            env.request_deploy(now);
            tx.update_environment(&env).await?;
            let cancelled = tx.cancel_queued_deployments(id, now).await?;
            queue(tx, &env, Some(origin), now).await?;
            let mut reason = format!(
                "environment {id} {what}; deployment of {} queued",
                env.commit_sha.short()
            );
            if cancelled > 0 {
                reason.push_str(&format!("; {cancelled} older queued deployments cancelled"));
            }
            Ok(IngestOutcome::applied(reason))
        }
        Change::AwaitApproval(reason) => {
            if env.status() == ephemera_domain::EnvironmentStatus::Destroyed {
                env.revive(now)?;
            } else if env.commit_sha == pr.head_sha {
                // This head waits already: only the reason may change.
                refresh(&mut env, pr, installation, now);
                let head = env.commit_sha.clone();
                env.skip(&head, &reason, now)?;
                tx.update_environment(&env).await?;
                return Ok(IngestOutcome::ignored(reason.to_string()));
            }
            refresh(&mut env, pr, installation, now);
            await_approval(tx, env, &reason, origin, now).await
        }
        Change::Refresh { vouch } => {
            refresh(&mut env, pr, installation, now);
            vouch_for_head(&mut env, pr, vouch);
            tx.update_environment(&env).await?;
            Ok(IngestOutcome::applied(format!(
                "environment {id} already at {}; details refreshed",
                env.commit_sha.short()
            )))
        }
    }
}

/// Records the PR's head as vouched for by a maintainer.
fn vouch_for_head(env: &mut Environment, pr: &PullRequestChange, vouch: bool) {
    if vouch {
        env.trusted_sha = Some(pr.head_sha.clone());
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
    env.base_ref = pr.base_ref.clone();
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
