use chrono::{DateTime, Utc};

use crate::{
    CommitSha, EnvironmentId, GithubUserId, InstallationId, InvalidTransition, Namespace, PrNumber,
    RepositoryFullName,
};

crate::string_enum! {
    /// Where a PR's preview environment is in its life.
    pub enum EnvironmentStatus ("environment status") {
        Pending = "pending",
        Provisioning = "provisioning",
        Ready = "ready",
        Updating = "updating",
        Failed = "failed",
        Destroying = "destroying",
        Destroyed = "destroyed",
    }
}

impl EnvironmentStatus {
    /// The statuses this one may move to (docs/lifecycle.md).
    pub fn allowed_next(self) -> &'static [Self] {
        use EnvironmentStatus::*;
        match self {
            Pending => &[Provisioning, Destroying, Failed],
            Provisioning => &[Ready, Failed, Destroying],
            Ready => &[Updating, Destroying],
            Updating => &[Ready, Failed, Destroying],
            Failed => &[Provisioning, Updating, Destroying],
            Destroying => &[Destroyed, Failed],
            // A reopened PR revives the same record and namespace.
            Destroyed => &[Pending],
        }
    }

    pub fn can_become(self, next: Self) -> bool {
        self.allowed_next().contains(&next)
    }

    /// Whether the environment still exists or is on its way to existing.
    pub fn is_active(self) -> bool {
        self != Self::Destroyed
    }
}

/// The GitHub user who opened the PR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub github_id: GithubUserId,
    pub login: String,
}

/// One PR's preview environment.
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
    pub commit_sha: CommitSha,
    pub namespace: Namespace,
    pub environment_url: Option<String>,
    pub status: EnvironmentStatus,
    pub installation_id: Option<InstallationId>,
    pub owner: Option<Owner>,
    pub error_message: Option<String>,
    /// Why the environment is in its status ("PR merged", "idle for 72h"…).
    pub status_reason: Option<String>,
    pub last_deployed_at: Option<DateTime<Utc>>,
    /// `pull_request.updated_at` of the newest event applied: an older event
    /// arriving late must not move the environment backwards.
    pub pr_updated_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub destroyed_at: Option<DateTime<Utc>>,
    /// When a worker should next look at this environment (a deployment
    /// was queued, a destroy asked for, a retry is due); `None` when it is
    /// where it should be.
    pub work_due_at: Option<DateTime<Utc>>,
    /// Failed attempts at the current piece of work.
    pub work_attempts: u32,
    /// On a fork PR: the head commit a maintainer vouched for by adding the
    /// trusted label. Later commits need vouching again.
    pub trusted_sha: Option<CommitSha>,
    /// What the deploy policy needs, as the newest PR event (or GitHub,
    /// for drift repair) said: every path that starts a deployment decides
    /// on these (`DeployPolicy::evaluate_stored`).
    pub is_fork: bool,
    pub draft: bool,
    pub labels: Vec<String>,
}

impl Environment {
    /// Moves the environment to `next` if the lifecycle allows it.
    pub fn transition_to(
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

/// What is known of a PR when its environment is first recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEnvironment {
    pub repository: RepositoryFullName,
    pub repository_id: Option<i64>,
    pub pr_number: PrNumber,
    pub pr_title: String,
    pub branch_name: String,
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
        ("pending", "destroying"),
        ("pending", "failed"),
        ("provisioning", "ready"),
        ("provisioning", "failed"),
        ("provisioning", "destroying"),
        ("ready", "updating"),
        ("ready", "destroying"),
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
