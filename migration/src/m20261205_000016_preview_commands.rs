//! `/preview` commands written on PRs: recorded when the webhook is
//! answered, carried out by a worker after it checked the writer's
//! permission with GitHub. One row per comment (GitHub's comment id), so a
//! redelivered comment is recorded once.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000003_create_environments::Environments;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub enum PreviewCommands {
    Table,
    Id,
    CommentId,
    DeliveryId,
    InstallationId,
    RepositoryFullName,
    RepositoryId,
    PrNumber,
    AuthorLogin,
    Command,
    Status,
    Outcome,
    CreatedAt,
    UpdatedAt,
    LeaseOwner,
    LeaseExpiresAt,
}

#[derive(DeriveIden)]
enum Added {
    DeployRequestedSha,
}

#[derive(DeriveIden)]
enum Index {
    #[sea_orm(iden = "idx_preview_commands_pending")]
    Pending,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PreviewCommands::Table)
                    .col(big_pk_auto(PreviewCommands::Id))
                    .col(big_integer_uniq(PreviewCommands::CommentId))
                    .col(string_len(PreviewCommands::DeliveryId, 64))
                    .col(big_integer_null(PreviewCommands::InstallationId))
                    .col(string(PreviewCommands::RepositoryFullName))
                    .col(big_integer(PreviewCommands::RepositoryId))
                    .col(big_integer(PreviewCommands::PrNumber))
                    .col(string(PreviewCommands::AuthorLogin))
                    .col(string_len(PreviewCommands::Command, 64))
                    .col(string_len(PreviewCommands::Status, 16))
                    .col(text_null(PreviewCommands::Outcome))
                    .col(timestamp_with_time_zone(PreviewCommands::CreatedAt))
                    .col(timestamp_with_time_zone(PreviewCommands::UpdatedAt))
                    .col(string_len_null(PreviewCommands::LeaseOwner, 128))
                    .col(timestamp_with_time_zone_null(
                        PreviewCommands::LeaseExpiresAt,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                sea_query::Index::create()
                    .name(Index::Pending.to_string())
                    .table(PreviewCommands::Table)
                    .col(PreviewCommands::Status)
                    .col(PreviewCommands::Id)
                    .to_owned(),
            )
            .await?;
        // The commit a writer asked a preview of (`/preview deploy`), which
        // `previews.mode: manual` waits for.
        manager
            .alter_table(
                Table::alter()
                    .table(Environments::Table)
                    .add_column(string_null(Added::DeployRequestedSha))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Environments::Table)
                    .drop_column(Added::DeployRequestedSha)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(PreviewCommands::Table).to_owned())
            .await
    }
}
