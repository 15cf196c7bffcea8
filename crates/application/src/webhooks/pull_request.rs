//! `pull_request` events: one decision per delivery (create, revive,
//! update, hold back or destroy the PR's environment) under the deploy
//! policy.

use chrono::{DateTime, Utc};
use ephemera_domain::{
    Environment, EnvironmentStatus, GithubUser, InstallationId, NewEnvironment, Owner,
    PolicyDecision, PullRequestFacts, SkipReason,
};

use super::effects::{destroy_all, queue, report};
use super::{IngestDelivery, IngestOutcome, PullRequestAction, PullRequestChange};
use crate::ports::{RepositoryError, WebhookTx};

impl IngestDelivery {
    pub(super) async fn pull_request(
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
                    let tell =
                        matches!(skip, SkipReason::ForkCommitNotVouched { .. }) && env.is_live();
                    if tell {
                        env.hold_back(&pr.head_sha, &skip);
                    }
                    tx.update_environment(&env).await?;
                    if tell {
                        report(tx, &env, None).await?;
                    }
                    Ok(IngestOutcome::ignored(reason))
                }
                Some(mut env) if env.is_live() => {
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
                if env.status() == EnvironmentStatus::Destroyed && !opening && !new_commit {
                    // An environment removed by the API or the TTL comes back
                    // with a reopen or a new commit, not with a label or title.
                    env.pr_updated_at = Some(pr.updated_at);
                    tx.update_environment(&env).await?;
                    return Ok(IngestOutcome::ignored(format!(
                        "environment {} is destroyed; a reopen or a new commit brings it back",
                        env.id
                    )));
                }
                if env.status() == EnvironmentStatus::Destroying {
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
                let revived = env.status() == EnvironmentStatus::Destroyed;
                if revived {
                    env.revive(now)
                        .map_err(|e| RepositoryError::Unexpected(e.into()))?;
                }
                refresh(&mut env, pr, installation, now);
                if trusted_sha.is_some() {
                    env.trusted_sha = trusted_sha;
                }
                if revived || new_commit {
                    env.request_deploy(now);
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
        if !env.is_live() {
            tx.update_environment(&env).await?;
            return Ok(IngestOutcome::ignored(format!(
                "{why}; environment {} is already {}",
                env.id,
                env.status()
            )));
        }
        let id = env.id;
        destroy_all(tx, vec![env], why, now).await?;
        Ok(IngestOutcome::applied(format!(
            "{why}; environment {id} destroying"
        )))
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
