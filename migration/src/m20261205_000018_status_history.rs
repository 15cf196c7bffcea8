//! `environment_status_changes`: each status an environment entered, why
//! and when, newest last. The dashboard's timeline reads it, so a preview's
//! sleep and wake, failures and removal stay visible after the environment
//! moved on. Environments from before get one row: their current status at
//! their last change.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000003_create_environments::Environments;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// An environment column added after its table was created.
#[derive(DeriveIden)]
enum Later {
    StatusReason,
}

#[derive(DeriveIden)]
pub enum EnvironmentStatusChanges {
    Table,
    Id,
    EnvironmentId,
    Status,
    Reason,
    ChangedAt,
}

const BY_ENVIRONMENT: &str = "idx_environment_status_changes_environment";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use EnvironmentStatusChanges as C;
        manager
            .create_table(
                Table::create()
                    .table(C::Table)
                    .col(big_pk_auto(C::Id))
                    .col(big_integer(C::EnvironmentId))
                    .col(string_len(C::Status, 16))
                    .col(text_null(C::Reason))
                    .col(timestamp_with_time_zone(C::ChangedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(C::Table, C::EnvironmentId)
                            .to(Environments::Table, Environments::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // One environment's history, newest first.
        manager
            .create_index(
                Index::create()
                    .name(BY_ENVIRONMENT)
                    .table(C::Table)
                    .col(C::EnvironmentId)
                    .col(C::Id)
                    .to_owned(),
            )
            .await?;
        let current = Query::select()
            .column(Environments::Id)
            .column(Environments::Status)
            .column(Later::StatusReason)
            .column(Environments::UpdatedAt)
            .from(Environments::Table)
            .order_by(Environments::Id, Order::Asc)
            .to_owned();
        let backfill = Query::insert()
            .into_table(C::Table)
            .columns([C::EnvironmentId, C::Status, C::Reason, C::ChangedAt])
            .select_from(current)
            .map_err(|e| DbErr::Migration(e.to_string()))?
            .to_owned();
        manager.exec_stmt(backfill).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(EnvironmentStatusChanges::Table)
                    .to_owned(),
            )
            .await
    }
}
