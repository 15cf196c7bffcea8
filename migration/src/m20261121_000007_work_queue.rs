//! The environments table doubles as the work queue: `work_due_at` says
//! when a worker should look at an environment, a lease says which worker
//! is looking, `work_attempts` counts failures of the current piece of work.
//! `status_reason` says why the environment is in its status (PR closed,
//! idle past the TTL, …).

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000003_create_environments::Environments;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Added {
    StatusReason,
    WorkDueAt,
    WorkAttempts,
    LeaseOwner,
    LeaseExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            text_null(Added::StatusReason),
            timestamp_with_time_zone_null(Added::WorkDueAt),
            integer(Added::WorkAttempts).default(0).to_owned(),
            string_len_null(Added::LeaseOwner, 128),
            timestamp_with_time_zone_null(Added::LeaseExpiresAt),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(Environments::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        // Only environments with work due are in this index, so claiming
        // the next one stays cheap however many environments exist.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX ix_environments_work_due ON environments (work_due_at) \
                 WHERE work_due_at IS NOT NULL",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_environments_work_due")
                    .table(Environments::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            Added::LeaseExpiresAt,
            Added::LeaseOwner,
            Added::WorkAttempts,
            Added::WorkDueAt,
            Added::StatusReason,
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
