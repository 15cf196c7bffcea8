//! Recorded `/preview` commands as a queue: claimed with a lease (PostgreSQL
//! `FOR UPDATE SKIP LOCKED`; SQLite has one writer), finished with how they
//! ended.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ephemera_application::ports::{CommandEnd, CommandQueue, PendingCommand, RepositoryError};
use ephemera_domain::{CommentCommand, InstallationId, PrNumber, RepositoryFullName};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait, QueryFilter,
    Statement,
};

use crate::entities::preview_commands::{Column, Entity, Model};
use crate::error::{corrupt, db_err};

/// [`CommandQueue`] on SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub struct SqlCommandQueue {
    db: DatabaseConnection,
}

impl SqlCommandQueue {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

const CLAIM_POSTGRES: &str = "UPDATE preview_commands SET lease_owner = $1, lease_expires_at = $2 \
     WHERE id = (SELECT id FROM preview_commands \
                 WHERE status = 'pending' \
                   AND (lease_expires_at IS NULL OR lease_expires_at < $3) \
                 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) \
     RETURNING id";

const CLAIM_SQLITE: &str = "UPDATE preview_commands SET lease_owner = ?1, lease_expires_at = ?2 \
     WHERE id = (SELECT id FROM preview_commands \
                 WHERE status = 'pending' \
                   AND (lease_expires_at IS NULL OR lease_expires_at < ?3) \
                 ORDER BY id LIMIT 1) \
     RETURNING id";

impl TryFrom<Model> for PendingCommand {
    type Error = anyhow::Error;

    fn try_from(row: Model) -> Result<Self, Self::Error> {
        let id = row.id;
        let bad = |e: ephemera_domain::ValidationError| corrupt("preview_commands", id, e);
        let command = CommentCommand::parse(&row.command)
            .ok_or_else(|| corrupt("preview_commands", id, "not a /preview command"))?;
        Ok(PendingCommand {
            id,
            comment_id: row.comment_id,
            installation_id: row
                .installation_id
                .map(InstallationId::new)
                .transpose()
                .map_err(bad)?,
            repository: RepositoryFullName::parse(&row.repository_full_name).map_err(bad)?,
            pr_number: PrNumber::new(row.pr_number).map_err(bad)?,
            author_login: row.author_login,
            command,
        })
    }
}

#[async_trait]
impl CommandQueue for SqlCommandQueue {
    async fn claim_command(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Option<PendingCommand>, RepositoryError> {
        let backend = self.db.get_database_backend();
        let sql = match backend {
            DatabaseBackend::Postgres => CLAIM_POSTGRES,
            _ => CLAIM_SQLITE,
        };
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let statement = Statement::from_sql_and_values(
            backend,
            sql,
            vec![owner.into(), until.into(), now.into()],
        );
        let row = self
            .db
            .query_one_raw(statement)
            .await
            .map_err(|e| db_err(e, "claiming a /preview command"))?;
        let Some(row) = row else { return Ok(None) };
        let id: i64 = row
            .try_get("", "id")
            .map_err(|e| db_err(e, "reading the claimed command's id"))?;
        let model = Entity::find_by_id(id)
            .one(&self.db)
            .await
            .map_err(|e| db_err(e, format!("reading command {id}")))?
            .ok_or_else(|| RepositoryError::Unexpected(anyhow::anyhow!("command {id} vanished")))?;
        PendingCommand::try_from(model)
            .map(Some)
            .map_err(RepositoryError::Unexpected)
    }

    async fn finish_command(
        &self,
        id: i64,
        end: CommandEnd,
        outcome: &str,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        Entity::update_many()
            .col_expr(Column::Status, Expr::value(end.as_str()))
            .col_expr(Column::Outcome, Expr::value(outcome))
            .col_expr(Column::UpdatedAt, Expr::value(now))
            .col_expr(Column::LeaseOwner, Expr::value(Option::<String>::None))
            .col_expr(
                Column::LeaseExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(Column::Id.eq(id))
            .exec(&self.db)
            .await
            .map_err(|e| db_err(e, format!("finishing command {id}")))?;
        Ok(())
    }
}
