use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ephemera_domain::{
    DeliveryId, Environment, GithubUser, InstallationId, InstallationStatus,
    InstalledRepository as Repo, NewEnvironment, PrNumber, RepositoryFullName,
};

use super::{EnvironmentTx, RepositoryError};

/// What identifies a delivery in the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryHeader {
    pub delivery_id: DeliveryId,
    pub event: String,
    pub action: Option<String>,
    pub repository: Option<String>,
    pub installation_id: Option<InstallationId>,
    /// Hex SHA-256 of the signed body. GitHub's redeliveries reuse the
    /// delivery id, so the same body under another id is a replay.
    pub body_sha256: Option<String>,
}

/// Whether a delivery is new to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First time seen, or seen before and failed: apply it now.
    Fresh,
    /// Seen and handled before: change nothing.
    Duplicate,
    /// A new delivery id with the body of an earlier delivery: someone
    /// captured a signed delivery and sent it again. Change nothing.
    Replay { original: DeliveryId },
}

/// Opens the one transaction a delivery is applied in.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait WebhookStore: Send + Sync {
    async fn begin(&self) -> Result<Box<dyn WebhookTx>, RepositoryError>;

    /// Records, outside any transaction, that a delivery could not be
    /// applied (its transaction was rolled back).
    async fn record_failure(
        &self,
        header: &DeliveryHeader,
        error: String,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError>;
}

/// Everything one delivery may read and change, inside one transaction.
/// Dropping it without `commit` rolls everything back.
#[async_trait]
pub trait WebhookTx: EnvironmentTx {
    /// Looks the delivery up in the log (counting a redelivery); a new
    /// one is entered, at the latest, by `finish_delivery` in the same
    /// transaction, and a concurrent request with the same id makes one of
    /// the two fail with [`RepositoryError::Conflict`].
    async fn claim_delivery(
        &mut self,
        header: &DeliveryHeader,
        now: DateTime<Utc>,
    ) -> Result<Claim, RepositoryError>;

    /// Writes the outcome of a claimed delivery (entering it in the log if
    /// it is new).
    async fn finish_delivery(
        &mut self,
        delivery_id: &DeliveryId,
        outcome: ephemera_domain::DeliveryOutcome,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError>;

    async fn upsert_user(
        &mut self,
        user: &GithubUser,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError>;

    /// The PR's environment, locked against concurrent deliveries until
    /// commit (PostgreSQL `FOR UPDATE`; SQLite has one writer).
    /// Found by GitHub's repository id when given (it survives renames),
    /// else by name among rows stored without one.
    async fn environment_for_pr(
        &mut self,
        repository_id: Option<i64>,
        repository: &RepositoryFullName,
        pr_number: PrNumber,
    ) -> Result<Option<Environment>, RepositoryError>;

    /// [`RepositoryError::Conflict`] when another delivery created it first.
    async fn insert_environment(
        &mut self,
        new: NewEnvironment,
        now: DateTime<Utc>,
    ) -> Result<Environment, RepositoryError>;

    async fn upsert_installation(
        &mut self,
        id: InstallationId,
        account_login: &str,
        status: InstallationStatus,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError>;

    async fn add_repositories(
        &mut self,
        id: InstallationId,
        repositories: &[Repo],
    ) -> Result<(), RepositoryError>;

    async fn remove_repositories(
        &mut self,
        id: InstallationId,
        repositories: &[Repo],
    ) -> Result<(), RepositoryError>;

    /// Environments of the installation that are not destroyed, locked.
    async fn live_environments_of_installation(
        &mut self,
        id: InstallationId,
    ) -> Result<Vec<Environment>, RepositoryError>;

    /// Environments of the repository that are not destroyed, locked.
    async fn live_environments_of_repository(
        &mut self,
        repository: &Repo,
    ) -> Result<Vec<Environment>, RepositoryError>;

    /// `installation.updated_at` of the newest installation event applied.
    async fn installation_seen_at(
        &mut self,
        id: InstallationId,
    ) -> Result<Option<DateTime<Utc>>, RepositoryError>;

    /// Records `at` as the newest installation event applied (never moves
    /// it backwards); the installation row exists.
    async fn mark_installation_seen(
        &mut self,
        id: InstallationId,
        at: DateTime<Utc>,
    ) -> Result<(), RepositoryError>;

    /// Records a `/preview` command for a worker to carry out; `false`
    /// when its comment was recorded before (a redelivery; a redelivered
    /// button click is caught earlier, by its delivery id).
    async fn record_command(
        &mut self,
        command: &NewPreviewCommand,
        now: DateTime<Utc>,
    ) -> Result<bool, RepositoryError>;
}

/// A `/preview` command as the webhook records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPreviewCommand {
    /// The comment (one command per comment) or the check run's button.
    pub origin: super::CommandOrigin,
    pub delivery_id: DeliveryId,
    pub installation_id: Option<InstallationId>,
    pub repository: RepositoryFullName,
    pub repository_id: i64,
    pub pr_number: PrNumber,
    pub author_login: String,
    pub command: ephemera_domain::CommentCommand,
}
