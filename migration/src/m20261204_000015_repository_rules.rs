//! What per-repository rules (`.github/ephemera.yml`) need on each
//! environment: the PR's base branch (rules match it), since when it waits
//! for a slot under a cap (first waiting goes first), and the repository's
//! idle TTL, sleep delay and what its bounds refused, from the last rules
//! read. Each
//! deployment keeps the webhook delivery that queued it, so that delivery's
//! log entry can say what the rules decided.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000003_create_environments::Environments;
use crate::m20261121_000004_create_deployments::Deployments;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Added {
    BaseRef,
    WaitingSince,
    IdleTtlSeconds,
    ConfigNotes,
    SleepAfterSeconds,
    DeliveryId,
}

#[derive(DeriveIden)]
enum Index {
    #[sea_orm(iden = "idx_environments_waiting")]
    Waiting,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one column per ALTER TABLE.
        for column in [
            text(Added::BaseRef).default("").to_owned(),
            timestamp_with_time_zone_null(Added::WaitingSince).to_owned(),
            big_integer_null(Added::IdleTtlSeconds).to_owned(),
            text(Added::ConfigNotes).default("[]").to_owned(),
            big_integer_null(Added::SleepAfterSeconds).to_owned(),
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
        manager
            .alter_table(
                Table::alter()
                    .table(Deployments::Table)
                    .add_column(string_null(Added::DeliveryId))
                    .to_owned(),
            )
            .await?;
        // The line of waiting previews, oldest first.
        manager
            .create_index(
                sea_query::Index::create()
                    .name(Index::Waiting.to_string())
                    .table(Environments::Table)
                    .col(Added::WaitingSince)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                sea_query::Index::drop()
                    .name(Index::Waiting.to_string())
                    .table(Environments::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Deployments::Table)
                    .drop_column(Added::DeliveryId)
                    .to_owned(),
            )
            .await?;
        for column in [
            Added::BaseRef,
            Added::WaitingSince,
            Added::IdleTtlSeconds,
            Added::ConfigNotes,
            Added::SleepAfterSeconds,
        ] {
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
