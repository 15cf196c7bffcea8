//! The outbox of reports to GitHub: written in the same transaction as the
//! state change that causes it, delivered afterwards by the report workers.
//! Also where GitHub's ids live: the PR comment and each Deployment.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000003_create_environments::Environments;
use crate::m20261121_000004_create_deployments::Deployments;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum GithubReports {
    Table,
    Id,
    EnvironmentId,
    /// The preview's state when the report was written (JSON).
    Snapshot,
    /// pending, delivered, failed or superseded.
    Status,
    Attempts,
    NextAttemptAt,
    LastError,
    LeaseOwner,
    LeaseExpiresAt,
    CreatedAt,
    DeliveredAt,
}

#[derive(DeriveIden)]
enum Added {
    GithubCommentId,
    GithubDeploymentId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(GithubReports::Table)
                    .col(big_pk_auto(GithubReports::Id))
                    .col(big_integer(GithubReports::EnvironmentId))
                    .col(text(GithubReports::Snapshot))
                    .col(string_len(GithubReports::Status, 16))
                    .col(integer(GithubReports::Attempts).default(0))
                    .col(timestamp_with_time_zone(GithubReports::NextAttemptAt))
                    .col(text_null(GithubReports::LastError))
                    .col(string_len_null(GithubReports::LeaseOwner, 128))
                    .col(timestamp_with_time_zone_null(GithubReports::LeaseExpiresAt))
                    .col(timestamp_with_time_zone(GithubReports::CreatedAt))
                    .col(timestamp_with_time_zone_null(GithubReports::DeliveredAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_github_reports_environment")
                            .from(GithubReports::Table, GithubReports::EnvironmentId)
                            .to(Environments::Table, Environments::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_github_reports_environment_id")
                    .table(GithubReports::Table)
                    .col(GithubReports::EnvironmentId)
                    .col(GithubReports::Id)
                    .to_owned(),
            )
            .await?;
        // Only undelivered reports are in this index: the backlog.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX ix_github_reports_pending ON github_reports (next_attempt_at) \
                 WHERE status = 'pending'",
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Environments::Table)
                    .add_column(big_integer_null(Added::GithubCommentId))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Deployments::Table)
                    .add_column(big_integer_null(Added::GithubDeploymentId))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Deployments::Table)
                    .drop_column(Added::GithubDeploymentId)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Environments::Table)
                    .drop_column(Added::GithubCommentId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(GithubReports::Table).to_owned())
            .await
    }
}
