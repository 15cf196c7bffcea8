use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000003_create_environments::Environments;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub enum Deployments {
    Table,
    Id,
    EnvironmentId,
    CommitSha,
    CommitMessage,
    Status,
    StartedAt,
    CompletedAt,
    ErrorMessage,
    Logs,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Deployments::Table)
                    .col(big_pk_auto(Deployments::Id))
                    .col(big_integer(Deployments::EnvironmentId))
                    .col(string_len(Deployments::CommitSha, 64))
                    .col(text_null(Deployments::CommitMessage))
                    .col(string_len(Deployments::Status, 16))
                    .col(timestamp_with_time_zone_null(Deployments::StartedAt))
                    .col(timestamp_with_time_zone_null(Deployments::CompletedAt))
                    .col(text_null(Deployments::ErrorMessage))
                    .col(text(Deployments::Logs).default(""))
                    .col(timestamp_with_time_zone(Deployments::CreatedAt))
                    .col(timestamp_with_time_zone(Deployments::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_deployments_environment")
                            .from(Deployments::Table, Deployments::EnvironmentId)
                            .to(Environments::Table, Environments::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // History of one environment, newest first.
        manager
            .create_index(
                Index::create()
                    .name("ix_deployments_environment_id")
                    .table(Deployments::Table)
                    .col(Deployments::EnvironmentId)
                    .col(Deployments::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Deployments::Table).to_owned())
            .await
    }
}
