//! Environments keyed on GitHub's repository id, which survives renames
//! (case-only ones too): the unique key becomes (repository_id, pr_number);
//! the name stays indexed, no longer unique, for rows from before (NULL id).

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000003_create_environments::Environments;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Added {
    RepositoryId,
}

const BY_NAME: &str = "ux_environments_repository_pr";
const BY_NAME_PLAIN: &str = "ix_environments_repository_pr";
const BY_ID: &str = "ux_environments_repository_id_pr";

fn by_name(name: &str) -> IndexCreateStatement {
    Index::create()
        .name(name)
        .table(Environments::Table)
        .col(Environments::RepositoryFullName)
        .col(Environments::PrNumber)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Environments::Table)
                    .add_column(big_integer_null(Added::RepositoryId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(BY_ID)
                    .table(Environments::Table)
                    .col(Added::RepositoryId)
                    .col(Environments::PrNumber)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(BY_NAME)
                    .table(Environments::Table)
                    .to_owned(),
            )
            .await?;
        manager.create_index(by_name(BY_NAME_PLAIN)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(BY_NAME_PLAIN)
                    .table(Environments::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(by_name(BY_NAME).unique().to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(BY_ID)
                    .table(Environments::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Environments::Table)
                    .drop_column(Added::RepositoryId)
                    .to_owned(),
            )
            .await
    }
}
