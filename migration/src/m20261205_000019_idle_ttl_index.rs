//! An index for the TTL sweep: which idle TTLs live environments use.
//!
//! The sweep first asks for the distinct `idle_ttl_seconds` among live
//! environments, then runs one indexed query per TTL. That first question
//! read the whole table on every sweep (`just bench-idle`: a Seq Scan at
//! 10,000 live previews on PostgreSQL, a full SCAN on SQLite); this partial
//! index answers it from the index alone. Its predicate is the sweep's own
//! text (`persistence::environments::LIVE`), which both databases require
//! to match a partial index.

use sea_orm_migration::prelude::*;

use crate::m20261121_000003_create_environments::Environments;

#[derive(DeriveMigrationName)]
pub struct Migration;

const CREATE: &str = "CREATE INDEX ix_environments_live_idle_ttl ON environments (idle_ttl_seconds) \
     WHERE status NOT IN ('destroying', 'destroyed')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(CREATE).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_environments_live_idle_ttl")
                    .table(Environments::Table)
                    .to_owned(),
            )
            .await
    }
}
