use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub enum WebhookDeliveries {
    Table,
    Id,
    /// GitHub's `X-GitHub-Delivery` GUID.
    DeliveryId,
    Event,
    Action,
    RepositoryFullName,
    InstallationId,
    /// applied, ignored, duplicate or failed.
    Outcome,
    /// Why it was ignored, or the error it failed with.
    Reason,
    ReceivedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(big_pk_auto(WebhookDeliveries::Id))
                    .col(string_len_uniq(WebhookDeliveries::DeliveryId, 64))
                    .col(string_len(WebhookDeliveries::Event, 64))
                    .col(string_len_null(WebhookDeliveries::Action, 64))
                    .col(string_null(WebhookDeliveries::RepositoryFullName))
                    .col(big_integer_null(WebhookDeliveries::InstallationId))
                    .col(string_len(WebhookDeliveries::Outcome, 16))
                    .col(text_null(WebhookDeliveries::Reason))
                    .col(timestamp_with_time_zone(WebhookDeliveries::ReceivedAt))
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("ix_webhook_deliveries_event_id", WebhookDeliveries::Event),
            (
                "ix_webhook_deliveries_outcome_id",
                WebhookDeliveries::Outcome,
            ),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(WebhookDeliveries::Table)
                        .col(column)
                        .col(WebhookDeliveries::Id)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebhookDeliveries::Table).to_owned())
            .await
    }
}
