//! Replays: each delivery's body digest (the same signed body under a new
//! delivery id is a replay; GitHub's redeliveries keep the id), and the
//! newest `installation.updated_at` applied per installation (an older
//! installation event arriving late or replayed is stale).

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000002_create_installations::Installations;
use crate::m20261121_000005_create_webhook_deliveries::WebhookDeliveries;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Added {
    BodySha256,
    EventUpdatedAt,
}

const BODY_INDEX: &str = "webhook_deliveries_body_sha256";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(WebhookDeliveries::Table)
                    .add_column(string_len_null(Added::BodySha256, 64))
                    .to_owned(),
            )
            .await?;
        // Unique, so two copies racing in lose one to a conflict; NULLs
        // (replays themselves, failures recorded without a body) never clash.
        manager
            .create_index(
                Index::create()
                    .name(BODY_INDEX)
                    .table(WebhookDeliveries::Table)
                    .col(Added::BodySha256)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Installations::Table)
                    .add_column(timestamp_with_time_zone_null(Added::EventUpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Installations::Table)
                    .drop_column(Added::EventUpdatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(BODY_INDEX)
                    .table(WebhookDeliveries::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(WebhookDeliveries::Table)
                    .drop_column(Added::BodySha256)
                    .to_owned(),
            )
            .await
    }
}
