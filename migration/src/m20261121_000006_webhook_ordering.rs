//! Webhook ingestion: the `updated_at` of the newest PR event applied to an
//! environment (late events must not move it backwards), and how often
//! GitHub sent each delivery.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000003_create_environments::Environments;
use crate::m20261121_000005_create_webhook_deliveries::WebhookDeliveries;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Added {
    PrUpdatedAt,
    Attempts,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite takes one change per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table(Environments::Table)
                    .add_column(timestamp_with_time_zone_null(Added::PrUpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(WebhookDeliveries::Table)
                    .add_column(integer(Added::Attempts).default(1))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(WebhookDeliveries::Table)
                    .add_column(timestamp_with_time_zone_null(Added::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, column) in [
            (
                WebhookDeliveries::Table.into_iden(),
                Added::UpdatedAt.into_iden(),
            ),
            (
                WebhookDeliveries::Table.into_iden(),
                Added::Attempts.into_iden(),
            ),
            (
                Environments::Table.into_iden(),
                Added::PrUpdatedAt.into_iden(),
            ),
        ] {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
