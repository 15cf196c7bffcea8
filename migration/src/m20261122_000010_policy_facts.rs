//! What the deploy policy needs, stored on each environment (fork, draft,
//! labels), so that every path that starts a deployment (drift repair, the
//! REST redeploy, reopen) decides as the webhook does.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000003_create_environments::Environments;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Added {
    IsFork,
    Draft,
    Labels,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one column per ALTER TABLE.
        // Existing rows count as forks until a PR event or drift repair says
        // otherwise, so nothing stored before this migration deploys a fork
        // commit nobody vouched for.
        for column in [
            boolean(Added::IsFork).default(true).to_owned(),
            boolean(Added::Draft).default(false).to_owned(),
            text(Added::Labels).default("[]").to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Environments::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Added::IsFork, Added::Draft, Added::Labels] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Environments::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
