use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ephemera_application::ports::{
    Claim, CommandOrigin, DeliveryHeader, NewPreviewCommand, RepositoryError, WebhookStore,
    WebhookTx,
};
use ephemera_domain::{
    DeliveryId, DeliveryOutcome, Environment, GithubUser, InstallationId, InstallationStatus,
    InstalledRepository as Repo, NewEnvironment, PrNumber, RepositoryFullName,
};
use sea_orm::DatabaseConnection;

use crate::deliveries::Seen;
use crate::tx::{Reporting, SqlTx};
use crate::{deliveries, environments, installations, users};

/// [`WebhookStore`] on SQLite or PostgreSQL: each delivery in one database
/// transaction.
#[derive(Debug, Clone)]
pub struct SqlWebhookStore {
    db: DatabaseConnection,
    reporting: Reporting,
}

impl SqlWebhookStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            reporting: Reporting::Off,
        }
    }

    /// Queue reports to GitHub in each transaction (when reporting is on).
    pub fn reporting(mut self, reporting: Reporting) -> Self {
        self.reporting = reporting;
        self
    }
}

#[async_trait]
impl WebhookStore for SqlWebhookStore {
    async fn begin(&self) -> Result<Box<dyn WebhookTx>, RepositoryError> {
        Ok(Box::new(SqlTx::begin(&self.db, self.reporting).await?))
    }

    async fn record_failure(
        &self,
        header: &DeliveryHeader,
        error: String,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        deliveries::record_failure(&self.db, header, error, now).await
    }
}

#[async_trait]
impl WebhookTx for SqlTx {
    async fn claim_delivery(
        &mut self,
        header: &DeliveryHeader,
        now: DateTime<Utc>,
    ) -> Result<Claim, RepositoryError> {
        let seen = deliveries::seen(
            &self.txn,
            &header.delivery_id,
            header.body_sha256.as_deref(),
        )
        .await?;
        match seen {
            // A new delivery's row is written by `finish_delivery`, once,
            // with its outcome: one statement instead of an insert and an
            // update. A concurrent request with the same id that gets there
            // first makes that insert a conflict, and the whole
            // transaction is tried again (and found a duplicate).
            Seen::New => {
                self.unlogged = Some(header.clone());
                Ok(Claim::Fresh)
            }
            Seen::SameBodyAs(original) => {
                // Logged under its own id, without the digest (which
                // belongs to the original).
                self.unlogged = Some(DeliveryHeader {
                    body_sha256: None,
                    ..header.clone()
                });
                Ok(Claim::Replay { original })
            }
            Seen::Recorded(outcome) => {
                deliveries::count_attempt(&self.txn, &header.delivery_id, now).await?;
                // A delivery that failed before is applied afresh, so a
                // redelivery from GitHub heals an outage.
                Ok(if outcome == DeliveryOutcome::Failed {
                    Claim::Fresh
                } else {
                    Claim::Duplicate
                })
            }
        }
    }

    async fn finish_delivery(
        &mut self,
        delivery_id: &DeliveryId,
        outcome: DeliveryOutcome,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        match self.unlogged.take() {
            Some(header) if &header.delivery_id == delivery_id => {
                deliveries::insert_finished(&self.txn, &header, outcome, reason, now).await
            }
            _ => deliveries::finish(&self.txn, delivery_id, outcome, reason, now).await,
        }
    }

    async fn upsert_user(
        &mut self,
        user: &GithubUser,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        users::upsert(&self.txn, user, now).await
    }

    async fn environment_for_pr(
        &mut self,
        repository_id: Option<i64>,
        repository: &RepositoryFullName,
        pr_number: PrNumber,
    ) -> Result<Option<Environment>, RepositoryError> {
        environments::for_pr_locked(&self.txn, repository_id, repository, pr_number).await
    }

    async fn insert_environment(
        &mut self,
        new: NewEnvironment,
        now: DateTime<Utc>,
    ) -> Result<Environment, RepositoryError> {
        environments::insert(&self.txn, new, now).await
    }

    async fn installation_seen_at(
        &mut self,
        id: InstallationId,
    ) -> Result<Option<DateTime<Utc>>, RepositoryError> {
        installations::seen_at(&self.txn, id).await
    }

    async fn mark_installation_seen(
        &mut self,
        id: InstallationId,
        at: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        installations::mark_seen(&self.txn, id, at).await
    }

    async fn record_command(
        &mut self,
        command: &NewPreviewCommand,
        now: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        use sea_orm::sea_query::OnConflict;
        use sea_orm::{ActiveValue::NotSet, EntityTrait, Set};

        use crate::entities::preview_commands::{ActiveModel, Column, Entity};
        use crate::error::db_err;
        let row = ActiveModel {
            id: NotSet,
            comment_id: Set(command.origin.comment_id()),
            delivery_id: Set(command.delivery_id.to_string()),
            installation_id: Set(command.installation_id.map(InstallationId::get)),
            repository_full_name: Set(command.repository.as_str().to_owned()),
            repository_id: Set(command.repository_id),
            pr_number: Set(i64::from(command.pr_number.get())),
            author_login: Set(command.author_login.clone()),
            command: Set(command.command.to_string()),
            status: Set("pending".to_owned()),
            outcome: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            lease_owner: Set(None),
            lease_expires_at: Set(None),
            check_run_id: Set(match &command.origin {
                CommandOrigin::Button { check_run_id, .. } => Some(*check_run_id),
                CommandOrigin::Comment(_) => None,
            }),
            head_sha: Set(match &command.origin {
                CommandOrigin::Button { head_sha, .. } => Some(head_sha.to_string()),
                CommandOrigin::Comment(_) => None,
            }),
        };
        // A redelivered comment is recorded once.
        let inserted = Entity::insert(row)
            .on_conflict(
                OnConflict::column(Column::CommentId)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.txn)
            .await
            .map_err(|e| db_err(e, format!("recording the command {}", command.command)))?;
        Ok(inserted > 0)
    }

    async fn upsert_installation(
        &mut self,
        id: InstallationId,
        account_login: &str,
        status: InstallationStatus,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        installations::upsert(&self.txn, id, account_login, status, now).await
    }

    async fn add_repositories(
        &mut self,
        id: InstallationId,
        repositories: &[Repo],
    ) -> Result<(), RepositoryError> {
        installations::add_repositories(&self.txn, id, repositories).await
    }

    async fn remove_repositories(
        &mut self,
        id: InstallationId,
        repositories: &[Repo],
    ) -> Result<(), RepositoryError> {
        let ids = repositories.iter().map(|r| r.github_id).collect();
        installations::remove_repositories(&self.txn, id, ids).await
    }

    async fn live_environments_of_installation(
        &mut self,
        id: InstallationId,
    ) -> Result<Vec<Environment>, RepositoryError> {
        environments::live_of_installation_locked(&self.txn, id).await
    }

    async fn live_environments_of_repository(
        &mut self,
        repository: &Repo,
    ) -> Result<Vec<Environment>, RepositoryError> {
        environments::live_of_repository_locked(&self.txn, repository).await
    }
}
