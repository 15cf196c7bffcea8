//! [`Pruner`] on SQLite or PostgreSQL: plain DELETE/UPDATE statements by
//! age, each in its own transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ephemera_application::ports::{Pruner, RepositoryError};
use ephemera_domain::EnvironmentStatus;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use crate::entities::{deployments, environments, github_reports, webhook_deliveries};
use crate::error::db_err;

/// Prunes the delivery log, the outbox and old deployment logs.
#[derive(Debug, Clone)]
pub struct SqlPruner {
    db: DatabaseConnection,
}

impl SqlPruner {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

/// Mirrors the outbox's own name for reports still to send.
const PENDING: &str = "pending";

#[async_trait]
impl Pruner for SqlPruner {
    async fn prune_deliveries(&self, before: DateTime<Utc>) -> Result<u64, RepositoryError> {
        let done = webhook_deliveries::Entity::delete_many()
            .filter(webhook_deliveries::Column::ReceivedAt.lt(before))
            .exec(&self.db)
            .await
            .map_err(|e| db_err(e, "pruning the delivery log"))?;
        Ok(done.rows_affected)
    }

    async fn prune_reports(&self, before: DateTime<Utc>) -> Result<u64, RepositoryError> {
        let done = github_reports::Entity::delete_many()
            .filter(github_reports::Column::Status.ne(PENDING))
            .filter(github_reports::Column::CreatedAt.lt(before))
            .exec(&self.db)
            .await
            .map_err(|e| db_err(e, "pruning sent reports"))?;
        Ok(done.rows_affected)
    }

    async fn prune_logs(&self, before: DateTime<Utc>, note: &str) -> Result<u64, RepositoryError> {
        let destroyed_long_ago = Query::select()
            .column(environments::Column::Id)
            .from(environments::Entity)
            .and_where(
                Expr::col(environments::Column::Status).eq(EnvironmentStatus::Destroyed.as_str()),
            )
            .and_where(Expr::col(environments::Column::DestroyedAt).lt(before))
            .to_owned();
        let done = deployments::Entity::update_many()
            .col_expr(deployments::Column::Logs, Expr::value(note))
            .filter(deployments::Column::EnvironmentId.in_subquery(destroyed_long_ago))
            .filter(deployments::Column::Logs.ne(note))
            .exec(&self.db)
            .await
            .map_err(|e| db_err(e, "pruning old deployment logs"))?;
        Ok(done.rows_affected)
    }
}
