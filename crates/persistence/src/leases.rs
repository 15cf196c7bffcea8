//! [`Leases`] on SQLite or PostgreSQL: one upsert that only takes a lease
//! that is free, expired or already ours.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ephemera_application::ports::{Leases, RepositoryError};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{DatabaseConnection, EntityTrait, Set};

use crate::entities::leases::{ActiveModel, Column, Entity};
use crate::error::db_err;

#[derive(Debug, Clone)]
pub struct SqlLeases {
    db: DatabaseConnection,
}

impl SqlLeases {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

#[async_trait]
impl Leases for SqlLeases {
    async fn try_acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        let until = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        let done = Entity::insert(ActiveModel {
            name: Set(name.to_owned()),
            owner: Set(owner.to_owned()),
            expires_at: Set(until),
        })
        .on_conflict(
            OnConflict::column(Column::Name)
                .update_columns([Column::Owner, Column::ExpiresAt])
                // Taken only when it expired or is ours already.
                .action_and_where(
                    Expr::col((Entity, Column::ExpiresAt))
                        .lt(now)
                        .or(Expr::col((Entity, Column::Owner)).eq(owner)),
                )
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await
        .map_err(|e| db_err(e, format!("taking the lease {name}")))?;
        Ok(done == 1)
    }
}
