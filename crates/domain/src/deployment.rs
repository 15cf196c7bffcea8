use chrono::{DateTime, Utc};

use crate::{CommitSha, DeliveryId, DeploymentId, EnvironmentId, InvalidTransition};

crate::string_enum! {
    /// Where one commit's rollout into an environment is.
    pub enum DeploymentStatus ("deployment status") {
        Queued = "queued",
        InProgress = "in_progress",
        Success = "success",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

impl DeploymentStatus {
    /// The statuses this one may move to (docs/lifecycle.md): queued → in_progress →
    /// success | failed, and queued | in_progress → cancelled when a newer
    /// commit supersedes it.
    pub fn allowed_next(self) -> &'static [Self] {
        use DeploymentStatus::*;
        match self {
            Queued => &[InProgress, Cancelled],
            InProgress => &[Success, Failed, Cancelled],
            Success | Failed | Cancelled => &[],
        }
    }

    pub fn can_become(self, next: Self) -> bool {
        self.allowed_next().contains(&next)
    }

    pub fn is_finished(self) -> bool {
        self.allowed_next().is_empty()
    }
}

/// One commit deployed (or being deployed) into an environment. Its
/// status, timestamps, error and logs change only through the lifecycle
/// methods below.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub id: DeploymentId,
    pub environment_id: EnvironmentId,
    pub commit_sha: CommitSha,
    pub commit_message: Option<String>,
    /// The webhook delivery that queued it, whose log entry learns what
    /// became of it when the worker decides (a skip by the repository's
    /// rules).
    pub delivery_id: Option<DeliveryId>,
    status: DeploymentStatus,
    started_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    error_message: Option<String>,
    logs: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A deployment as stored, field by field: what the persistence adapter
/// loads a row into before [`Deployment::rehydrate`] makes it a deployment
/// again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentRecord {
    pub id: DeploymentId,
    pub environment_id: EnvironmentId,
    pub commit_sha: CommitSha,
    pub commit_message: Option<String>,
    pub delivery_id: Option<DeliveryId>,
    pub status: DeploymentStatus,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub error_message: Option<String>,
    pub logs: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Logs kept per deployment; older output is cut (with a marker) so a
/// chatty provisioner cannot fill the database.
pub const MAX_LOG_BYTES: usize = 256 * 1024;

impl Deployment {
    /// The deployment a stored record describes, as it was stored.
    pub fn rehydrate(record: DeploymentRecord) -> Self {
        let DeploymentRecord {
            id,
            environment_id,
            commit_sha,
            commit_message,
            delivery_id,
            status,
            started_at,
            completed_at,
            error_message,
            logs,
            created_at,
            updated_at,
        } = record;
        Self {
            id,
            environment_id,
            commit_sha,
            commit_message,
            delivery_id,
            status,
            started_at,
            completed_at,
            error_message,
            logs,
            created_at,
            updated_at,
        }
    }

    pub fn status(&self) -> DeploymentStatus {
        self.status
    }

    pub fn started_at(&self) -> Option<DateTime<Utc>> {
        self.started_at
    }

    pub fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.completed_at
    }

    /// Why the rollout failed, once it gave up.
    pub fn error_message(&self) -> Option<&str> {
        self.error_message.as_deref()
    }

    /// What the workers and the provisioner wrote, the newest
    /// [`MAX_LOG_BYTES`] of it.
    pub fn logs(&self) -> &str {
        &self.logs
    }

    /// Appends to the logs, keeping at most [`MAX_LOG_BYTES`] (the newest).
    pub fn append_log(&mut self, text: &str) {
        self.logs.push_str(text);
        if !text.ends_with('\n') && !text.is_empty() {
            self.logs.push('\n');
        }
        if self.logs.len() > MAX_LOG_BYTES {
            const MARKER: &str = "[… earlier output cut …]\n";
            let mut cut = self.logs.len() - (MAX_LOG_BYTES - MARKER.len());
            while !self.logs.is_char_boundary(cut) {
                cut += 1;
            }
            self.logs = format!("{MARKER}{}", &self.logs[cut..]);
        }
    }

    /// Moves the deployment to `next` if the lifecycle allows it, stamping
    /// when it started and when it finished.
    fn transition_to(
        &mut self,
        next: DeploymentStatus,
        now: DateTime<Utc>,
    ) -> Result<(), InvalidTransition> {
        if !self.status.can_become(next) {
            return Err(InvalidTransition {
                entity: "deployment",
                from: self.status.as_str(),
                to: next.as_str(),
            });
        }
        self.status = next;
        self.updated_at = now;
        if next == DeploymentStatus::InProgress {
            self.started_at = Some(now);
        }
        if next.is_finished() {
            self.completed_at = Some(now);
        }
        Ok(())
    }
}

/// The lifecycle rules of a rollout, each with the line it leaves in the
/// logs.
impl Deployment {
    /// A worker picks the deployment up (again, after a failed attempt).
    pub fn start(&mut self, now: DateTime<Utc>) -> Result<(), InvalidTransition> {
        match self.status {
            DeploymentStatus::InProgress => Ok(()),
            _ => self.transition_to(DeploymentStatus::InProgress, now),
        }
    }

    /// Something newer is wanted (`why`): this rollout stops here.
    pub fn cancel(&mut self, why: &str, now: DateTime<Utc>) -> Result<(), InvalidTransition> {
        self.append_log(&format!("[{}] cancelled: {why}", now.to_rfc3339()));
        self.transition_to(DeploymentStatus::Cancelled, now)
    }

    /// The rollout landed at `url`.
    pub fn succeed(&mut self, url: &str, now: DateTime<Utc>) -> Result<(), InvalidTransition> {
        self.append_log(&format!("[{}] ready at {url}", now.to_rfc3339()));
        self.transition_to(DeploymentStatus::Success, now)
    }

    /// Attempt `attempt` failed with `error` and another one comes after
    /// `after`; the deployment stays in progress.
    pub fn note_retry(
        &mut self,
        attempt: u32,
        error: &str,
        after: std::time::Duration,
        now: DateTime<Utc>,
    ) {
        self.append_log(&format!(
            "[{}] attempt {attempt} failed: {error}; retrying in {}s",
            now.to_rfc3339(),
            after.as_secs_f64()
        ));
    }

    /// The last attempt, `attempt`, failed with `error`: the rollout gave
    /// up.
    pub fn give_up(
        &mut self,
        attempt: u32,
        error: String,
        now: DateTime<Utc>,
    ) -> Result<(), InvalidTransition> {
        self.append_log(&format!(
            "[{}] attempt {attempt} failed: {error}; giving up",
            now.to_rfc3339()
        ));
        self.transition_to(DeploymentStatus::Failed, now)?;
        self.error_message = Some(error);
        Ok(())
    }

    /// The repository's rules give this commit no preview (`why` names the
    /// rule): cancelled, with `why` kept as its error for GitHub's report.
    pub fn skip(&mut self, why: &str, now: DateTime<Utc>) -> Result<(), InvalidTransition> {
        self.cancel(why, now)?;
        self.error_message = Some(format!("{NO_PREVIEW}{why}"));
        Ok(())
    }

    /// The commit cannot be deployed as it stands (its repository's
    /// `.github/ephemera.yml` is invalid): the deployment fails without a
    /// rollout, `error` in its log.
    pub fn refuse(&mut self, error: String, now: DateTime<Utc>) -> Result<(), InvalidTransition> {
        self.start(now)?;
        self.append_log(&format!("[{}] not deployed: {error}", now.to_rfc3339()));
        self.transition_to(DeploymentStatus::Failed, now)?;
        self.error_message = Some(error);
        Ok(())
    }
}

/// How [`Deployment::skip`] starts the error it keeps.
const NO_PREVIEW: &str = "no preview: ";

/// The rule that skipped a deployment, from the error [`Deployment::skip`]
/// kept; `None` for any other error.
pub fn skipped_because(error: &str) -> Option<&str> {
    error.strip_prefix(NO_PREVIEW)
}

/// A deployment as it is queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeployment {
    pub environment_id: EnvironmentId,
    pub commit_sha: CommitSha,
    pub commit_message: Option<String>,
    /// The webhook delivery that asks for it, if one does.
    pub delivery_id: Option<DeliveryId>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeploymentStatus::*;

    const ALLOWED: &[(&str, &str)] = &[
        ("queued", "in_progress"),
        ("queued", "cancelled"),
        ("in_progress", "success"),
        ("in_progress", "failed"),
        ("in_progress", "cancelled"),
    ];

    fn deployment(status: DeploymentStatus) -> Deployment {
        let at = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        Deployment {
            id: DeploymentId::new(3).unwrap(),
            environment_id: EnvironmentId::new(1).unwrap(),
            commit_sha: CommitSha::parse(&"b".repeat(40)).unwrap(),
            commit_message: None,
            delivery_id: None,
            status,
            started_at: None,
            completed_at: None,
            error_message: None,
            logs: String::new(),
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn every_pair_of_statuses_follows_the_design_table() {
        let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        for from in DeploymentStatus::ALL {
            for to in DeploymentStatus::ALL {
                let allowed = ALLOWED.contains(&(from.as_str(), to.as_str()));
                let mut deployment = deployment(from);
                let result = deployment.transition_to(to, now);
                assert_eq!(result.is_ok(), allowed, "{from} -> {to}");
                if let Err(err) = result {
                    assert_eq!(
                        err.to_string(),
                        format!("deployment cannot go from {from} to {to}")
                    );
                    assert_eq!(deployment.status, from);
                } else {
                    assert_eq!(deployment.status, to);
                }
            }
        }
    }

    #[test]
    fn timestamps_follow_the_lifecycle() {
        let start = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let end = DateTime::<Utc>::from_timestamp(1_800_000_060, 0).unwrap();
        let mut d = deployment(Queued);
        d.transition_to(InProgress, start).unwrap();
        assert_eq!((d.started_at, d.completed_at), (Some(start), None));
        d.transition_to(Success, end).unwrap();
        assert_eq!(d.completed_at, Some(end));
        assert!(d.status.is_finished());
    }

    #[test]
    fn logs_are_bounded_and_keep_the_newest_output() {
        let mut d = deployment(Queued);
        d.append_log("first line");
        assert_eq!(d.logs, "first line\n");
        for i in 0..40_000 {
            d.append_log(&format!("line {i}"));
        }
        assert!(d.logs.len() <= MAX_LOG_BYTES);
        assert!(d.logs.starts_with("[… earlier output cut …]"));
        assert!(d.logs.ends_with("line 39999\n"));
    }

    #[test]
    fn a_started_deployment_stays_started_when_picked_up_again() {
        let start = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let again = DateTime::<Utc>::from_timestamp(1_800_000_060, 0).unwrap();
        let mut d = deployment(Queued);
        d.start(start).unwrap();
        d.start(again).unwrap();
        assert_eq!((d.status, d.started_at), (InProgress, Some(start)));
        let err = deployment(Success).start(again).unwrap_err();
        assert_eq!(
            err.to_string(),
            "deployment cannot go from success to in_progress"
        );
    }

    #[test]
    fn each_ending_leaves_its_line_in_the_logs() {
        let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let stamp = "[2027-01-15T08:00:00+00:00]";

        let mut cancelled = deployment(Queued);
        cancelled
            .cancel("superseded by a newer commit", now)
            .unwrap();
        assert_eq!(cancelled.status, Cancelled);
        assert_eq!(
            cancelled.logs,
            format!("{stamp} cancelled: superseded by a newer commit\n")
        );

        let mut landed = deployment(InProgress);
        landed.succeed("https://pr-7.example", now).unwrap();
        assert_eq!(landed.status, Success);
        assert_eq!(
            landed.logs,
            format!("{stamp} ready at https://pr-7.example\n")
        );

        let mut retried = deployment(InProgress);
        retried.note_retry(
            1,
            "quota exceeded",
            std::time::Duration::from_millis(9500),
            now,
        );
        assert_eq!(retried.status, InProgress);
        assert_eq!(
            retried.logs,
            format!("{stamp} attempt 1 failed: quota exceeded; retrying in 9.5s\n")
        );

        let mut failed = deployment(InProgress);
        failed.give_up(3, "image not found".into(), now).unwrap();
        assert_eq!(failed.status, Failed);
        assert_eq!(failed.error_message.as_deref(), Some("image not found"));
        assert_eq!(
            failed.logs,
            format!("{stamp} attempt 3 failed: image not found; giving up\n")
        );
    }

    #[test]
    fn wire_names_are_snake_case() {
        assert_eq!(InProgress.to_string(), "in_progress");
        assert_eq!("in_progress".parse::<DeploymentStatus>(), Ok(InProgress));
        assert!("inprogress".parse::<DeploymentStatus>().is_err());
    }
}
