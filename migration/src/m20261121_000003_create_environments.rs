use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub enum Environments {
    Table,
    Id,
    RepositoryFullName,
    RepositoryName,
    PrNumber,
    PrTitle,
    BranchName,
    CommitSha,
    Namespace,
    EnvironmentUrl,
    Status,
    InstallationId,
    OwnerGithubId,
    OwnerLogin,
    ErrorMessage,
    LastDeployedAt,
    CreatedAt,
    UpdatedAt,
    DestroyedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Environments::Table)
                    .col(big_pk_auto(Environments::Id))
                    .col(string(Environments::RepositoryFullName))
                    .col(string(Environments::RepositoryName))
                    .col(big_integer(Environments::PrNumber))
                    .col(text(Environments::PrTitle))
                    .col(string(Environments::BranchName))
                    .col(string_len(Environments::CommitSha, 64))
                    .col(string_len_uniq(Environments::Namespace, 63))
                    .col(text_null(Environments::EnvironmentUrl))
                    .col(string_len(Environments::Status, 16))
                    .col(big_integer_null(Environments::InstallationId))
                    .col(big_integer_null(Environments::OwnerGithubId))
                    .col(string_null(Environments::OwnerLogin))
                    .col(text_null(Environments::ErrorMessage))
                    .col(timestamp_with_time_zone_null(Environments::LastDeployedAt))
                    .col(timestamp_with_time_zone(Environments::CreatedAt))
                    .col(timestamp_with_time_zone(Environments::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Environments::DestroyedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_environments_repository_pr")
                    .table(Environments::Table)
                    .col(Environments::RepositoryFullName)
                    .col(Environments::PrNumber)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Lists run newest first by id, so every filter gets an index ending
        // in id: a filtered page is an index range scan, never a sort.
        for (name, column) in [
            (
                "ix_environments_repository_id",
                Environments::RepositoryFullName,
            ),
            ("ix_environments_status_id", Environments::Status),
            ("ix_environments_pr_number_id", Environments::PrNumber),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Environments::Table)
                        .col(column)
                        .col(Environments::Id)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("ix_environments_installation")
                    .table(Environments::Table)
                    .col(Environments::InstallationId)
                    .to_owned(),
            )
            .await?;
        // active_only: a partial index holds only live environments, so the
        // page stays cheap when most rows are long destroyed. Same syntax on
        // PostgreSQL and SQLite.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX ix_environments_active_id ON environments (id) \
                 WHERE status <> 'destroyed'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Environments::Table).to_owned())
            .await
    }
}
