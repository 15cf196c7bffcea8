//! The "ephemera preview" check run of each deployment's commit, and
//! `/preview` commands that come from a check run's button rather than a
//! comment.
//!
//! - `deployments.github_check_run_id` / `github_check_state`: the check
//!   run GitHub holds for the deployment's commit and what it was last told
//!   (its state and buttons, e.g. `success:redeploy,destroy`, or `off`
//!   when checks are not reported for it). Deployments from before are `off`: an upgrade does
//!   not replay history to GitHub.
//! - `preview_commands`: `comment_id` becomes optional (a button has no
//!   comment), and a button's command keeps the check run and the commit it
//!   was clicked on. SQLite cannot relax a column, so the table is rebuilt
//!   (rows kept).

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000004_create_deployments::Deployments;
use crate::m20261205_000016_preview_commands::PreviewCommands;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Added {
    GithubCheckRunId,
    GithubCheckState,
    CheckRunId,
    HeadSha,
}

#[derive(DeriveIden)]
enum Old {
    #[sea_orm(iden = "preview_commands_v16")]
    Table,
}

const PENDING_INDEX: &str = "idx_preview_commands_pending";

/// The columns both shapes of the table have.
fn shared() -> [PreviewCommands; 15] {
    use PreviewCommands as C;
    [
        C::Id,
        C::CommentId,
        C::DeliveryId,
        C::InstallationId,
        C::RepositoryFullName,
        C::RepositoryId,
        C::PrNumber,
        C::AuthorLogin,
        C::Command,
        C::Status,
        C::Outcome,
        C::CreatedAt,
        C::UpdatedAt,
        C::LeaseOwner,
        C::LeaseExpiresAt,
    ]
}

/// `preview_commands` as of migration 16, or with an optional comment and
/// a button's check run and commit.
fn commands_table(buttons: bool) -> TableCreateStatement {
    use PreviewCommands as C;
    let mut table = Table::create();
    table.table(C::Table).col(big_pk_auto(C::Id));
    if buttons {
        table.col(big_integer_null(C::CommentId).unique_key());
    } else {
        table.col(big_integer_uniq(C::CommentId));
    }
    table
        .col(string_len(C::DeliveryId, 64))
        .col(big_integer_null(C::InstallationId))
        .col(string(C::RepositoryFullName))
        .col(big_integer(C::RepositoryId))
        .col(big_integer(C::PrNumber))
        .col(string(C::AuthorLogin))
        .col(string_len(C::Command, 64))
        .col(string_len(C::Status, 16))
        .col(text_null(C::Outcome))
        .col(timestamp_with_time_zone(C::CreatedAt))
        .col(timestamp_with_time_zone(C::UpdatedAt))
        .col(string_len_null(C::LeaseOwner, 128))
        .col(timestamp_with_time_zone_null(C::LeaseExpiresAt));
    if buttons {
        table
            .col(big_integer_null(Added::CheckRunId))
            .col(string_len_null(Added::HeadSha, 40));
    }
    table.to_owned()
}

/// Rebuilds `preview_commands` in the shape `buttons` says, keeping the
/// rows (`keep` filters them).
async fn rebuild(manager: &SchemaManager<'_>, buttons: bool, keep: &str) -> Result<(), DbErr> {
    manager
        .drop_index(
            Index::drop()
                .name(PENDING_INDEX)
                .table(PreviewCommands::Table)
                .to_owned(),
        )
        .await?;
    manager
        .rename_table(
            Table::rename()
                .table(PreviewCommands::Table, Old::Table)
                .to_owned(),
        )
        .await?;
    manager.create_table(commands_table(buttons)).await?;
    let columns = shared()
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    manager
        .get_connection()
        .execute_unprepared(&format!(
            "INSERT INTO preview_commands ({columns}) \
             SELECT {columns} FROM preview_commands_v16 WHERE {keep}"
        ))
        .await?;
    manager
        .drop_table(Table::drop().table(Old::Table).to_owned())
        .await?;
    manager
        .create_index(
            Index::create()
                .name(PENDING_INDEX)
                .table(PreviewCommands::Table)
                .col(PreviewCommands::Status)
                .col(PreviewCommands::Id)
                .to_owned(),
        )
        .await?;
    // PostgreSQL: the copied ids must not be handed out again.
    if manager.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        manager
            .get_connection()
            .execute_unprepared(
                "SELECT setval(pg_get_serial_sequence('preview_commands', 'id'), \
                 COALESCE((SELECT MAX(id) FROM preview_commands), 0) + 1, false)",
            )
            .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Deployments::Table)
                    .add_column(big_integer_null(Added::GithubCheckRunId))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Deployments::Table)
                    .add_column(string_len_null(Added::GithubCheckState, 64))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared("UPDATE deployments SET github_check_state = 'off'")
            .await?;
        rebuild(manager, true, "1 = 1").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A button's command has no comment to key the old table on.
        rebuild(manager, false, "comment_id IS NOT NULL").await?;
        for column in [Added::GithubCheckRunId, Added::GithubCheckState] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Deployments::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
