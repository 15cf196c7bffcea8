use chrono::{DateTime, Utc};

use crate::{
    CommitSha, EnvironmentId, GithubUserId, InstallationId, InvalidTransition, Namespace, PrNumber,
    RepositoryFullName,
};

crate::string_enum! {
    /// Where a PR's preview environment is in its life.
    pub enum EnvironmentStatus ("environment status") {
        Pending = "pending",
        /// Over a cap (`previews.max_active`, `EPHEMERA_MAX_ACTIVE`): waits
        /// in line for a slot.
        Waiting = "waiting",
        /// The repository's rules give this PR no preview (yet).
        Skipped = "skipped",
        Provisioning = "provisioning",
        Ready = "ready",
        Updating = "updating",
        Failed = "failed",
        Destroying = "destroying",
        Destroyed = "destroyed",
        /// Being put to sleep (`previews.sleep_after`, `/preview sleep`):
        /// the provisioner stops what runs.
        Stopping = "stopping",
        /// Asleep: nothing runs, the namespace, data and URL stay. A push,
        /// `/preview wake` or the check run's button wakes it.
        Sleeping = "sleeping",
        /// Being woken: the provisioner starts it again as it was.
        Waking = "waking",
    }
}

impl EnvironmentStatus {
    /// The statuses this one may move to (docs/lifecycle.md).
    pub fn allowed_next(self) -> &'static [Self] {
        use EnvironmentStatus::*;
        match self {
            Pending => &[Provisioning, Waiting, Skipped, Destroying, Failed],
            Waiting => &[Provisioning, Skipped, Destroying, Failed],
            Skipped => &[Provisioning, Waiting, Destroying, Failed],
            Provisioning => &[Ready, Failed, Destroying],
            Ready => &[Updating, Stopping, Destroying],
            Updating => &[Ready, Failed, Destroying],
            Failed => &[Provisioning, Updating, Destroying],
            Destroying => &[Destroyed, Failed],
            // A reopened PR revives the same record and namespace.
            Destroyed => &[Pending],
            Stopping => &[Sleeping, Failed, Destroying],
            // A push deploys its commit, which wakes the preview too.
            Sleeping => &[Waking, Updating, Destroying],
            Waking => &[Ready, Failed, Destroying],
        }
    }

    pub fn can_become(self, next: Self) -> bool {
        self.allowed_next().contains(&next)
    }

    /// Whether the environment still exists or is on its way to existing.
    pub fn is_active(self) -> bool {
        self != Self::Destroyed
    }

    /// Whether a preview in this status counts against the caps: it runs,
    /// is being created, changed or removed, or failed (and may hold what
    /// it created).
    pub fn holds_slot(self) -> bool {
        matches!(
            self,
            Self::Provisioning
                | Self::Ready
                | Self::Updating
                | Self::Failed
                | Self::Destroying
                | Self::Stopping
                | Self::Sleeping
                | Self::Waking
        )
    }
}

/// The GitHub user who opened the PR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub github_id: GithubUserId,
    pub login: String,
}

/// One step of an environment's status history: the status it entered,
/// why (its reason, and the error when it failed) and when. Each change of
/// [`Environment::status`] as stored adds one, so the dashboard can show a
/// preview going to sleep and waking again long after it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub status: EnvironmentStatus,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

impl StatusChange {
    /// The change that brought `env` to its current status.
    pub fn current(env: &Environment) -> Self {
        Self {
            status: env.status,
            reason: match (env.status, &env.status_reason, &env.error_message) {
                (EnvironmentStatus::Failed, Some(why), Some(error)) => {
                    Some(format!("{why}: {error}"))
                }
                (_, why, _) => why.clone(),
            },
            at: env.updated_at,
        }
    }
}

/// One PR's preview environment.
///
/// What the PR says (title, branch, commit, labels…) is open to change;
/// the lifecycle bookkeeping (status, its reasons, the URL, when work is
/// due and how many attempts failed) changes only through the lifecycle
/// methods below, so every use case follows the same rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub id: EnvironmentId,
    pub repository: RepositoryFullName,
    /// GitHub's id of the repository: it survives renames (the name is
    /// refreshed from each event). `None` on rows from before it was kept.
    pub repository_id: Option<i64>,
    pub pr_number: PrNumber,
    pub pr_title: String,
    pub branch_name: String,
    /// The branch the PR merges into (the repository's rules may match it);
    /// empty on rows from before it was kept.
    pub base_ref: String,
    pub commit_sha: CommitSha,
    pub namespace: Namespace,
    environment_url: Option<String>,
    status: EnvironmentStatus,
    pub installation_id: Option<InstallationId>,
    pub owner: Option<Owner>,
    error_message: Option<String>,
    /// Why the environment is in its status ("PR merged", "idle for 72h"…).
    status_reason: Option<String>,
    last_deployed_at: Option<DateTime<Utc>>,
    /// `pull_request.updated_at` of the newest event applied: an older event
    /// arriving late must not move the environment backwards.
    pub pr_updated_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    destroyed_at: Option<DateTime<Utc>>,
    /// When a worker should next look at this environment (a deployment
    /// was queued, a destroy asked for, a retry is due); `None` when it is
    /// where it should be.
    work_due_at: Option<DateTime<Utc>>,
    /// Failed attempts at the current piece of work.
    work_attempts: u32,
    /// On a fork PR: the head commit a maintainer vouched for by adding the
    /// trusted label. Later commits need vouching again.
    pub trusted_sha: Option<CommitSha>,
    /// What the deploy policy needs, as the newest PR event (or GitHub,
    /// for drift repair) said: every path that starts a deployment decides
    /// on these (`DeployPolicy::evaluate_stored`).
    pub is_fork: bool,
    pub draft: bool,
    pub labels: Vec<String>,
    /// Since when it waits for a slot (first waiting goes first).
    waiting_since: Option<DateTime<Utc>>,
    /// The repository's `previews.ttl` when it sets one (else the
    /// operator's `EPHEMERA_ENVIRONMENT_TTL`), from the last rules read.
    pub idle_ttl: Option<std::time::Duration>,
    /// What the last rules read refused of the repository's file (one line
    /// each), for the PR comment.
    pub config_notes: Vec<String>,
    /// The commit someone with write permission asked a preview of
    /// (`/preview deploy`), which `previews.mode: manual` waits for.
    pub deploy_requested_sha: Option<CommitSha>,
    /// The repository's `previews.sleep_after` from the last rules read
    /// (else the operator's `EPHEMERA_SLEEP_AFTER`): put it to sleep after
    /// this long without activity.
    pub sleep_after: Option<std::time::Duration>,
}

/// An environment as stored, field by field: what the persistence adapter
/// loads a row into before [`Environment::rehydrate`] makes it an
/// environment again (fields as on [`Environment`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentRecord {
    pub id: EnvironmentId,
    pub repository: RepositoryFullName,
    pub repository_id: Option<i64>,
    pub pr_number: PrNumber,
    pub pr_title: String,
    pub branch_name: String,
    pub base_ref: String,
    pub commit_sha: CommitSha,
    pub namespace: Namespace,
    pub environment_url: Option<String>,
    pub status: EnvironmentStatus,
    pub installation_id: Option<InstallationId>,
    pub owner: Option<Owner>,
    pub error_message: Option<String>,
    pub status_reason: Option<String>,
    pub last_deployed_at: Option<DateTime<Utc>>,
    pub pr_updated_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub destroyed_at: Option<DateTime<Utc>>,
    pub work_due_at: Option<DateTime<Utc>>,
    pub work_attempts: u32,
    pub trusted_sha: Option<CommitSha>,
    pub is_fork: bool,
    pub draft: bool,
    pub labels: Vec<String>,
    pub waiting_since: Option<DateTime<Utc>>,
    pub idle_ttl: Option<std::time::Duration>,
    pub config_notes: Vec<String>,
    pub sleep_after: Option<std::time::Duration>,
    pub deploy_requested_sha: Option<CommitSha>,
}

impl Environment {
    /// The environment a stored record describes, as it was stored.
    pub fn rehydrate(record: EnvironmentRecord) -> Self {
        let EnvironmentRecord {
            id,
            repository,
            repository_id,
            pr_number,
            pr_title,
            branch_name,
            base_ref,
            commit_sha,
            namespace,
            environment_url,
            status,
            installation_id,
            owner,
            error_message,
            status_reason,
            last_deployed_at,
            pr_updated_at,
            created_at,
            updated_at,
            destroyed_at,
            work_due_at,
            work_attempts,
            trusted_sha,
            is_fork,
            draft,
            labels,
            waiting_since,
            idle_ttl,
            config_notes,
            sleep_after,
            deploy_requested_sha,
        } = record;
        Self {
            id,
            repository,
            repository_id,
            pr_number,
            pr_title,
            branch_name,
            base_ref,
            commit_sha,
            namespace,
            environment_url,
            status,
            installation_id,
            owner,
            error_message,
            status_reason,
            last_deployed_at,
            pr_updated_at,
            created_at,
            updated_at,
            destroyed_at,
            work_due_at,
            work_attempts,
            trusted_sha,
            is_fork,
            draft,
            labels,
            waiting_since,
            idle_ttl,
            config_notes,
            sleep_after,
            deploy_requested_sha,
        }
    }

    pub fn status(&self) -> EnvironmentStatus {
        self.status
    }

    /// Where the preview answers, once a deployment landed.
    pub fn environment_url(&self) -> Option<&str> {
        self.environment_url.as_deref()
    }

    /// What went wrong last, while it is relevant.
    pub fn error_message(&self) -> Option<&str> {
        self.error_message.as_deref()
    }

    /// Why the environment is in its status ("PR merged", "idle for 72h"…).
    pub fn status_reason(&self) -> Option<&str> {
        self.status_reason.as_deref()
    }

    pub fn last_deployed_at(&self) -> Option<DateTime<Utc>> {
        self.last_deployed_at
    }

    pub fn destroyed_at(&self) -> Option<DateTime<Utc>> {
        self.destroyed_at
    }

    /// When a worker should next look at this environment; `None` when it
    /// is where it should be.
    pub fn work_due_at(&self) -> Option<DateTime<Utc>> {
        self.work_due_at
    }

    /// Failed attempts at the current piece of work.
    pub fn work_attempts(&self) -> u32 {
        self.work_attempts
    }

    /// Since when it waits for a slot, while it does.
    pub fn waiting_since(&self) -> Option<DateTime<Utc>> {
        self.waiting_since
    }
}

impl Environment {
    /// Moves the environment to `next` if the lifecycle allows it.
    fn transition_to(
        &mut self,
        next: EnvironmentStatus,
        now: DateTime<Utc>,
    ) -> Result<(), InvalidTransition> {
        if !self.status.can_become(next) {
            return Err(InvalidTransition {
                entity: "environment",
                from: self.status.as_str(),
                to: next.as_str(),
            });
        }
        self.status = next;
        self.updated_at = now;
        if next != EnvironmentStatus::Waiting {
            self.waiting_since = None;
        }
        match next {
            EnvironmentStatus::Destroyed => self.destroyed_at = Some(now),
            EnvironmentStatus::Pending => {
                self.destroyed_at = None;
                self.error_message = None;
                self.status_reason = None;
            }
            _ => {}
        }
        Ok(())
    }
}

/// What a worker that finds an environment due should do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueWork {
    /// Nothing: the environment is where it should be.
    Settle,
    /// Tear it down.
    Destroy,
    /// Roll out its newest wanted deployment, if it has one.
    Deploy,
    /// Put it to sleep.
    Stop,
    /// Wake it.
    Start,
}

/// The lifecycle rules: what a use case may do to an environment, each with
/// the bookkeeping it implies (status, reasons, when work is due, attempts).
impl Environment {
    /// Live = neither destroyed nor already on its way there.
    pub fn is_live(&self) -> bool {
        !matches!(
            self.status,
            EnvironmentStatus::Destroying | EnvironmentStatus::Destroyed
        )
    }

    /// What a worker should do now that this environment is due.
    pub fn due_work(&self) -> DueWork {
        match self.status {
            EnvironmentStatus::Destroyed => DueWork::Settle,
            EnvironmentStatus::Destroying => DueWork::Destroy,
            EnvironmentStatus::Stopping => DueWork::Stop,
            EnvironmentStatus::Waking => DueWork::Start,
            _ => DueWork::Deploy,
        }
    }

    /// Whether the environment is on its way to a deployment, so that one
    /// of its current commit is queued when none is wanted (a row whose
    /// queued deployment went missing still gets there).
    pub fn awaits_deployment(&self) -> bool {
        matches!(
            self.status,
            EnvironmentStatus::Pending
                | EnvironmentStatus::Waiting
                | EnvironmentStatus::Provisioning
                | EnvironmentStatus::Updating
        )
    }

    /// The number of the attempt a worker starting now makes.
    pub fn next_attempt(&self) -> u32 {
        self.work_attempts + 1
    }

    /// A worker is due at once, with a fresh count of attempts.
    pub fn schedule_work(&mut self, now: DateTime<Utc>) {
        self.work_due_at = Some(now);
        self.work_attempts = 0;
    }

    /// A deployment of the current commit was queued: a worker is due at
    /// once, and a note about a commit held back no longer applies.
    pub fn request_deploy(&mut self, now: DateTime<Utc>) {
        self.schedule_work(now);
        self.status_reason = None;
        self.updated_at = now;
    }

    /// The deploy policy holds commit `sha` back; what runs keeps running,
    /// and the status reason says which commit waits and why.
    pub fn hold_back(&mut self, sha: &CommitSha, reason: &dyn std::fmt::Display) {
        self.status_reason = Some(format!("commit {} is not deployed: {reason}", sha.short()));
    }

    /// Sends the environment to destroying for `reason`; a worker is due at
    /// once.
    pub fn begin_destroy(
        &mut self,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), InvalidTransition> {
        self.transition_to(EnvironmentStatus::Destroying, now)?;
        self.status_reason = Some(reason.to_owned());
        self.schedule_work(now);
        Ok(())
    }

    /// A worker starts rolling out a deployment: a first one provisions,
    /// a later one (or one after a failure of a deployed environment)
    /// updates.
    pub fn begin_deploy(&mut self, now: DateTime<Utc>) -> Result<(), InvalidTransition> {
        let next = match self.status {
            EnvironmentStatus::Pending
            | EnvironmentStatus::Waiting
            | EnvironmentStatus::Skipped => EnvironmentStatus::Provisioning,
            EnvironmentStatus::Failed if self.last_deployed_at.is_none() => {
                EnvironmentStatus::Provisioning
            }
            EnvironmentStatus::Ready | EnvironmentStatus::Failed | EnvironmentStatus::Sleeping => {
                EnvironmentStatus::Updating
            }
            same => same,
        };
        if next != self.status {
            self.transition_to(next, now)?;
        }
        Ok(())
    }

    /// Whether it must be let in under the caps before it deploys (it holds
    /// no slot yet).
    pub fn needs_slot(&self) -> bool {
        !self.status.holds_slot() && self.is_live()
    }

    /// Over a cap: the environment waits in line (keeping its place if it
    /// already waited), `reason` saying where, and is looked at again at
    /// `recheck` (a freed slot wakes it sooner).
    pub fn wait_for_slot(
        &mut self,
        reason: String,
        recheck: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), InvalidTransition> {
        if self.status != EnvironmentStatus::Waiting {
            self.transition_to(EnvironmentStatus::Waiting, now)?;
        }
        self.waiting_since.get_or_insert(now);
        self.status_reason = Some(reason);
        self.work_due_at = Some(recheck);
        self.work_attempts = 0;
        Ok(())
    }

    /// The repository's rules give commit `sha` no preview: one that never
    /// ran is skipped (and leaves the line), one that runs keeps running
    /// and the new commit is held back. Either way no work is due.
    pub fn skip(
        &mut self,
        sha: &CommitSha,
        reason: &dyn std::fmt::Display,
        now: DateTime<Utc>,
    ) -> Result<(), InvalidTransition> {
        if self.needs_slot() {
            if self.status != EnvironmentStatus::Skipped {
                self.transition_to(EnvironmentStatus::Skipped, now)?;
            }
            self.status_reason = Some(format!("no preview: {reason}"));
        } else {
            self.hold_back(sha, reason);
            self.updated_at = now;
        }
        self.settle();
        Ok(())
    }

    /// Puts a ready preview to sleep for `reason`; a worker is due at once.
    pub fn begin_sleep(
        &mut self,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), InvalidTransition> {
        self.transition_to(EnvironmentStatus::Stopping, now)?;
        self.status_reason = Some(reason.to_owned());
        self.schedule_work(now);
        Ok(())
    }

    /// The provisioner stopped it: asleep, nothing due.
    pub fn mark_asleep(&mut self, now: DateTime<Utc>) -> Result<(), InvalidTransition> {
        self.transition_to(EnvironmentStatus::Sleeping, now)?;
        self.error_message = None;
        self.settle();
        Ok(())
    }

    /// Wakes a sleeping preview for `reason`; a worker is due at once (it
    /// ends [`Self::mark_ready`]).
    pub fn begin_wake(
        &mut self,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), InvalidTransition> {
        self.transition_to(EnvironmentStatus::Waking, now)?;
        self.status_reason = Some(reason.to_owned());
        self.schedule_work(now);
        Ok(())
    }

    /// When its PR or its preview last saw activity: the later of the PR's
    /// newest event (or the environment's creation) and its last
    /// deployment or wake.
    pub fn last_activity(&self) -> DateTime<Utc> {
        let pr = self.pr_updated_at.unwrap_or(self.created_at);
        self.last_deployed_at
            .map_or(pr, |deployed| deployed.max(pr))
    }

    /// The deployment landed: the environment is ready at `url`.
    pub fn mark_ready(&mut self, url: String, now: DateTime<Utc>) -> Result<(), InvalidTransition> {
        self.transition_to(EnvironmentStatus::Ready, now)?;
        self.environment_url = Some(url);
        self.last_deployed_at = Some(now);
        self.error_message = None;
        self.status_reason = None;
        self.settle();
        Ok(())
    }

    /// Attempt `attempt` failed with `error`; the next one is due at `due`.
    pub fn retry_at(
        &mut self,
        due: DateTime<Utc>,
        attempt: u32,
        error: String,
        now: DateTime<Utc>,
    ) {
        self.error_message = Some(error);
        self.work_attempts = attempt;
        self.work_due_at = Some(due);
        self.updated_at = now;
    }

    /// A destroy under way is looked at again at `due`; that is not a
    /// failed attempt, so the count of attempts stays as it is.
    pub fn recheck_at(&mut self, due: DateTime<Utc>) {
        self.work_due_at = Some(due);
    }

    /// Out of attempts: the environment is failed with `error`, `reason`
    /// saying what gave up, and no work is due.
    pub fn fail(
        &mut self,
        error: String,
        reason: String,
        now: DateTime<Utc>,
    ) -> Result<(), InvalidTransition> {
        self.transition_to(EnvironmentStatus::Failed, now)?;
        self.error_message = Some(error);
        self.status_reason = Some(reason);
        self.settle();
        Ok(())
    }

    /// The provisioner tore the environment down.
    pub fn mark_destroyed(&mut self, now: DateTime<Utc>) -> Result<(), InvalidTransition> {
        self.transition_to(EnvironmentStatus::Destroyed, now)?;
        self.environment_url = None;
        self.error_message = None;
        self.settle();
        Ok(())
    }

    /// A destroyed environment comes back (same record and namespace) and
    /// a worker is due at once.
    pub fn revive(&mut self, now: DateTime<Utc>) -> Result<(), InvalidTransition> {
        self.transition_to(EnvironmentStatus::Pending, now)?;
        self.schedule_work(now);
        Ok(())
    }

    /// Nothing more to do for now.
    pub fn settle(&mut self) {
        self.work_due_at = None;
        self.work_attempts = 0;
    }
}

/// What is known of a PR when its environment is first recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEnvironment {
    pub repository: RepositoryFullName,
    pub repository_id: Option<i64>,
    pub pr_number: PrNumber,
    pub pr_title: String,
    pub branch_name: String,
    pub base_ref: String,
    pub commit_sha: CommitSha,
    pub installation_id: Option<InstallationId>,
    pub owner: Option<Owner>,
    /// `pull_request.updated_at` of the event that creates it.
    pub pr_updated_at: Option<DateTime<Utc>>,
    pub is_fork: bool,
    pub draft: bool,
    pub labels: Vec<String>,
}

impl NewEnvironment {
    /// The namespace this environment will live in.
    pub fn namespace(&self) -> Namespace {
        match self.repository_id {
            Some(id) => Namespace::for_repository_pr(id, &self.repository, self.pr_number),
            None => Namespace::for_pr(&self.repository, self.pr_number),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EnvironmentStatus::*;

    /// docs/lifecycle.md, written out independently of `allowed_next`.
    const ALLOWED: &[(&str, &str)] = &[
        ("pending", "provisioning"),
        ("pending", "waiting"),
        ("pending", "skipped"),
        ("pending", "destroying"),
        ("pending", "failed"),
        ("waiting", "provisioning"),
        ("waiting", "skipped"),
        ("waiting", "destroying"),
        ("waiting", "failed"),
        ("skipped", "provisioning"),
        ("skipped", "waiting"),
        ("skipped", "destroying"),
        ("skipped", "failed"),
        ("provisioning", "ready"),
        ("provisioning", "failed"),
        ("provisioning", "destroying"),
        ("ready", "updating"),
        ("ready", "stopping"),
        ("ready", "destroying"),
        ("stopping", "sleeping"),
        ("stopping", "failed"),
        ("stopping", "destroying"),
        ("sleeping", "waking"),
        ("sleeping", "updating"),
        ("sleeping", "destroying"),
        ("waking", "ready"),
        ("waking", "failed"),
        ("waking", "destroying"),
        ("updating", "ready"),
        ("updating", "failed"),
        ("updating", "destroying"),
        ("failed", "provisioning"),
        ("failed", "updating"),
        ("failed", "destroying"),
        ("destroying", "destroyed"),
        ("destroying", "failed"),
        ("destroyed", "pending"),
    ];

    fn environment(status: EnvironmentStatus) -> Environment {
        let repository = RepositoryFullName::parse("octo/web").unwrap();
        let pr_number = PrNumber::new(7).unwrap();
        let at = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        Environment {
            id: EnvironmentId::new(1).unwrap(),
            namespace: Namespace::for_pr(&repository, pr_number),
            repository,
            repository_id: None,
            pr_number,
            pr_title: "Add feature".into(),
            branch_name: "feature".into(),
            base_ref: "main".into(),
            commit_sha: CommitSha::parse(&"a".repeat(40)).unwrap(),
            environment_url: None,
            status,
            installation_id: None,
            owner: None,
            error_message: Some("boom".into()),
            status_reason: None,
            last_deployed_at: None,
            pr_updated_at: None,
            created_at: at,
            updated_at: at,
            destroyed_at: None,
            work_due_at: None,
            work_attempts: 0,
            trusted_sha: None,
            is_fork: false,
            draft: false,
            labels: Vec::new(),
            waiting_since: None,
            idle_ttl: None,
            config_notes: Vec::new(),
            sleep_after: None,
            deploy_requested_sha: None,
        }
    }

    #[test]
    fn every_pair_of_statuses_follows_the_design_table() {
        let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        for from in EnvironmentStatus::ALL {
            for to in EnvironmentStatus::ALL {
                let allowed = ALLOWED.contains(&(from.as_str(), to.as_str()));
                let mut env = environment(from);
                let result = env.transition_to(to, now);
                if allowed {
                    assert_eq!(result, Ok(()), "{from} -> {to}");
                    assert_eq!(env.status, to);
                    assert_eq!(env.updated_at, now);
                } else {
                    assert_eq!(
                        result,
                        Err(InvalidTransition {
                            entity: "environment",
                            from: from.as_str(),
                            to: to.as_str()
                        }),
                        "{from} -> {to}"
                    );
                    assert_eq!(env.status, from, "a refused move changes nothing");
                    assert_ne!(env.updated_at, now);
                }
            }
        }
    }

    #[test]
    fn destroying_stamps_destroyed_at_and_reviving_clears_it() {
        let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let mut env = environment(Destroying);
        env.transition_to(Destroyed, now).unwrap();
        assert_eq!(env.destroyed_at, Some(now));
        assert!(!env.status.is_active());

        env.transition_to(Pending, now).unwrap();
        assert_eq!(env.destroyed_at, None);
        assert_eq!(env.error_message, None);
        assert!(env.status.is_active());
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn only_environments_not_destroying_or_destroyed_are_live() {
        for status in EnvironmentStatus::ALL {
            let live = !matches!(status, Destroying | Destroyed);
            assert_eq!(environment(status).is_live(), live, "{status}");
        }
    }

    #[test]
    fn due_work_follows_the_status() {
        for status in EnvironmentStatus::ALL {
            let env = environment(status);
            let (work, awaits) = match status {
                Destroyed => (DueWork::Settle, false),
                Destroying => (DueWork::Destroy, false),
                Pending | Waiting | Provisioning | Updating => (DueWork::Deploy, true),
                Skipped | Ready | Failed | Sleeping => (DueWork::Deploy, false),
                Stopping => (DueWork::Stop, false),
                Waking => (DueWork::Start, false),
            };
            assert_eq!(env.due_work(), work, "{status}");
            assert_eq!(env.awaits_deployment(), awaits, "{status}");
        }
    }

    #[test]
    fn a_retry_counts_the_attempt_and_scheduling_new_work_starts_the_count_again() {
        let mut env = environment(Provisioning);
        assert_eq!(env.next_attempt(), 1);
        env.retry_at(at(30), 1, "quota exceeded".into(), at(0));
        assert_eq!(env.status, Provisioning, "still on its way");
        assert_eq!(env.error_message.as_deref(), Some("quota exceeded"));
        assert_eq!((env.work_due_at, env.updated_at), (Some(at(30)), at(0)));
        assert_eq!(env.next_attempt(), 2);

        env.schedule_work(at(40));
        assert_eq!((env.work_due_at, env.next_attempt()), (Some(at(40)), 1));
    }

    #[test]
    fn a_destroy_under_way_is_rechecked_without_using_up_an_attempt() {
        let mut env = environment(Destroying);
        env.retry_at(at(10), 2, "timeout".into(), at(0));
        env.recheck_at(at(15));
        assert_eq!((env.work_due_at, env.next_attempt()), (Some(at(15)), 3));
    }

    #[test]
    fn a_held_back_commit_is_noted_until_a_deployment_is_requested() {
        let mut env = environment(Ready);
        let sha = CommitSha::parse(&"d".repeat(40)).unwrap();
        env.hold_back(&sha, &crate::SkipReason::InstallationSuspended);
        assert_eq!(
            env.status_reason.as_deref(),
            Some(
                "commit ddddddd is not deployed: the App's installation is suspended: no new deployments until it is unsuspended"
            )
        );
        env.retry_at(at(30), 2, "boom".into(), at(0));

        env.request_deploy(at(5));
        assert_eq!(env.status_reason, None);
        assert_eq!((env.work_due_at, env.next_attempt()), (Some(at(5)), 1));
        assert_eq!(env.updated_at, at(5));
    }

    #[test]
    fn beginning_a_destroy_records_why_and_makes_work_due_now() {
        let mut env = environment(Ready);
        env.retry_at(at(30), 2, "boom".into(), at(0));
        env.begin_destroy("PR merged", at(1)).unwrap();
        assert_eq!(env.status, Destroying);
        assert_eq!(env.status_reason.as_deref(), Some("PR merged"));
        assert_eq!((env.work_due_at, env.next_attempt()), (Some(at(1)), 1));

        let mut gone = environment(Destroyed);
        let err = gone.begin_destroy("PR merged", at(1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment cannot go from destroyed to destroying"
        );
        assert_eq!((gone.status, gone.status_reason), (Destroyed, None));
    }

    #[test]
    fn a_first_deployment_provisions_and_a_later_one_updates() {
        let cases = [
            (Pending, None, Provisioning),
            (Failed, None, Provisioning),
            (Failed, Some(at(0)), Updating),
            (Ready, Some(at(0)), Updating),
            (Provisioning, None, Provisioning),
            (Updating, Some(at(0)), Updating),
        ];
        for (from, deployed, to) in cases {
            let mut env = environment(from);
            env.last_deployed_at = deployed;
            env.begin_deploy(at(1)).unwrap();
            assert_eq!(env.status, to, "{from}, deployed before: {deployed:?}");
        }
    }

    #[test]
    fn a_landed_deployment_makes_the_environment_ready_and_settled() {
        let mut env = environment(Updating);
        env.status_reason = Some("commit ddddddd is not deployed: …".into());
        env.retry_at(at(30), 2, "boom".into(), at(0));
        env.mark_ready("https://pr-7.example".into(), at(2))
            .unwrap();
        assert_eq!(env.status, Ready);
        assert_eq!(env.environment_url.as_deref(), Some("https://pr-7.example"));
        assert_eq!(env.last_deployed_at, Some(at(2)));
        assert_eq!((env.error_message, env.status_reason), (None, None));
        assert_eq!((env.work_due_at, env.work_attempts), (None, 0));
    }

    #[test]
    fn out_of_attempts_the_environment_fails_with_the_error_and_why() {
        let mut env = environment(Provisioning);
        env.retry_at(at(30), 2, "boom".into(), at(0));
        env.fail(
            "image not found".into(),
            "deployment failed after 3 attempts".into(),
            at(3),
        )
        .unwrap();
        assert_eq!(env.status, Failed);
        assert_eq!(env.error_message.as_deref(), Some("image not found"));
        assert_eq!(
            env.status_reason.as_deref(),
            Some("deployment failed after 3 attempts")
        );
        assert_eq!((env.work_due_at, env.work_attempts), (None, 0));
    }

    #[test]
    fn a_torn_down_environment_loses_its_url_and_a_revived_one_is_due_at_once() {
        let mut env = environment(Destroying);
        env.environment_url = Some("https://pr-7.example".into());
        env.retry_at(at(30), 2, "namespace stuck".into(), at(0));
        env.mark_destroyed(at(4)).unwrap();
        assert_eq!(env.status, Destroyed);
        assert_eq!((&env.environment_url, &env.error_message), (&None, &None));
        assert_eq!(env.destroyed_at, Some(at(4)));
        assert_eq!((env.work_due_at, env.work_attempts), (None, 0));

        env.revive(at(5)).unwrap();
        assert_eq!(env.status, Pending);
        assert_eq!((env.work_due_at, env.destroyed_at), (Some(at(5)), None));
    }

    #[test]
    fn a_waiting_preview_keeps_its_place_and_starts_from_the_line() {
        let mut env = environment(Pending);
        env.wait_for_slot("waiting: 5 of 5".into(), at(60), at(1))
            .unwrap();
        env.wait_for_slot("waiting: 5 of 5, 1st".into(), at(120), at(61))
            .unwrap();
        assert_eq!(env.status, Waiting);
        assert_eq!(
            env.waiting_since(),
            Some(at(1)),
            "the first wait sets the place"
        );
        assert_eq!(env.work_due_at, Some(at(120)));
        assert_eq!(env.status_reason(), Some("waiting: 5 of 5, 1st"));
        assert!(env.needs_slot());
        env.begin_deploy(at(130)).unwrap();
        assert_eq!((env.status, env.waiting_since()), (Provisioning, None));
        assert!(!env.needs_slot());
    }

    #[test]
    fn a_skip_leaves_a_running_preview_running_and_a_new_one_skipped() {
        let sha = CommitSha::parse(&"b".repeat(40)).unwrap();
        let mut fresh = environment(Waiting);
        fresh.waiting_since = Some(at(0));
        fresh.skip(&sha, &"previews.mode: off", at(1)).unwrap();
        assert_eq!(fresh.status, Skipped);
        assert_eq!(
            fresh.status_reason(),
            Some("no preview: previews.mode: off")
        );
        assert_eq!((fresh.work_due_at, fresh.waiting_since()), (None, None));

        let mut running = environment(Ready);
        running.skip(&sha, &"previews.mode: off", at(1)).unwrap();
        assert_eq!(running.status, Ready);
        assert_eq!(
            running.status_reason(),
            Some("commit bbbbbbb is not deployed: previews.mode: off")
        );
        // A later commit the rules let through starts it normally.
        fresh.begin_deploy(at(2)).unwrap();
        assert_eq!(fresh.status, Provisioning);
    }

    #[test]
    fn a_preview_sleeps_and_wakes_keeping_its_url() {
        let mut env = environment(Ready);
        env.environment_url = Some("https://pr-7.example".into());
        env.last_deployed_at = Some(at(0));
        env.begin_sleep("idle for 2h (previews.sleep_after)", at(1))
            .unwrap();
        assert_eq!((env.status, env.due_work()), (Stopping, DueWork::Stop));
        assert_eq!(env.work_due_at, Some(at(1)));
        env.mark_asleep(at(2)).unwrap();
        assert_eq!((env.status, env.work_due_at), (Sleeping, None));
        assert_eq!(env.environment_url(), Some("https://pr-7.example"));
        assert!(env.status.holds_slot(), "its namespace and data stay");
        env.begin_wake("@alice: /preview wake", at(3)).unwrap();
        assert_eq!((env.status, env.due_work()), (Waking, DueWork::Start));
        env.mark_ready("https://pr-7.example".into(), at(4))
            .unwrap();
        assert_eq!(env.last_activity(), at(4), "waking counts as activity");

        let mut pushed = environment(Sleeping);
        pushed.begin_deploy(at(5)).unwrap();
        assert_eq!(pushed.status, Updating, "a push wakes it by deploying");
        assert!(environment(Pending).begin_sleep("x", at(1)).is_err());
    }

    #[test]
    fn settling_leaves_no_work_due() {
        let mut env = environment(Ready);
        env.retry_at(at(30), 2, "boom".into(), at(0));
        env.settle();
        assert_eq!((env.work_due_at, env.next_attempt()), (None, 1));
    }

    #[test]
    fn status_names_round_trip_and_unknown_names_are_refused() {
        for status in EnvironmentStatus::ALL {
            assert_eq!(status.as_str().parse::<EnvironmentStatus>(), Ok(status));
        }
        let err = "Ready".parse::<EnvironmentStatus>().unwrap_err();
        assert!(
            err.to_string().contains("`Ready` is not one of pending"),
            "{err}"
        );
    }
}
