use anyhow::Context as _;
use async_trait::async_trait;
use ephemera_application::ports::{HealthProbe, StatsProbe};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
};

use crate::entities::environments::{Column, Entity};

/// Readiness (the database answers) and the numbers `/metrics` reads.
#[derive(Debug, Clone)]
pub struct SqlHealthProbe {
    db: DatabaseConnection,
}

impl SqlHealthProbe {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

#[async_trait]
impl HealthProbe for SqlHealthProbe {
    async fn check_database(&self) -> anyhow::Result<()> {
        self.db.ping().await.context("database did not answer")
    }
}

#[async_trait]
impl StatsProbe for SqlHealthProbe {
    async fn environments_by_status(&self) -> anyhow::Result<Vec<(String, i64)>> {
        Entity::find()
            .select_only()
            .column(Column::Status)
            .column_as(Column::Id.count(), "n")
            .group_by(Column::Status)
            .into_tuple()
            .all(&self.db)
            .await
            .context("counting environments by status")
    }

    async fn work_backlog(&self) -> anyhow::Result<i64> {
        let count = Entity::find()
            .filter(Column::WorkDueAt.lte(chrono::Utc::now()))
            .count(&self.db)
            .await
            .context("counting due work")?;
        Ok(i64::try_from(count).unwrap_or(i64::MAX))
    }

    async fn report_backlog(&self) -> anyhow::Result<i64> {
        let count = crate::entities::github_reports::Entity::find()
            .filter(crate::entities::github_reports::Column::Status.eq("pending"))
            .count(&self.db)
            .await
            .context("counting pending GitHub reports")?;
        Ok(i64::try_from(count).unwrap_or(i64::MAX))
    }
}
