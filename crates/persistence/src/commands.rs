//! Recorded `/preview` commands as a queue: claimed with a lease (PostgreSQL
//! `FOR UPDATE SKIP LOCKED`; SQLite has one writer), finished with how they
//! ended.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ephemera_application::ports::{
    CommandEnd, CommandNote, CommandOrigin, CommandQueue, PendingCommand, RepositoryError,
};
use ephemera_domain::{
    CommentCommand, CommitSha, InstallationId, PrNumber, PreviewReport, RepositoryFullName,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement, TransactionTrait,
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
        let origin = match (row.comment_id, row.check_run_id, row.head_sha.as_deref()) {
            (Some(comment), _, _) => CommandOrigin::Comment(comment),
            (None, Some(check_run_id), Some(sha)) => CommandOrigin::Button {
                check_run_id,
                head_sha: CommitSha::parse(sha).map_err(bad)?,
            },
            _ => {
                return Err(corrupt(
                    "preview_commands",
                    id,
                    "neither a comment nor a button",
                ));
            }
        };
        Ok(PendingCommand {
            id,
            origin,
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
        let txn = self
            .db
            .begin()
            .await
            .map_err(|e| db_err(e, "opening a transaction"))?;
        let row = Entity::find_by_id(id)
            .one(&txn)
            .await
            .map_err(|e| db_err(e, format!("reading command {id}")))?;
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
            .exec(&txn)
            .await
            .map_err(|e| db_err(e, format!("finishing command {id}")))?;
        // The sticky comment lists the command and how it ended.
        if let Some(row) = row {
            let repository = RepositoryFullName::parse(&row.repository_full_name)
                .map_err(|e| RepositoryError::Unexpected(corrupt("preview_commands", id, e)))?;
            let pr = PrNumber::new(row.pr_number)
                .map_err(|e| RepositoryError::Unexpected(corrupt("preview_commands", id, e)))?;
            let env =
                crate::environments::for_pr_locked(&txn, Some(row.repository_id), &repository, pr)
                    .await?;
            if let Some(report) = env.as_ref().and_then(|env| PreviewReport::of(env, None)) {
                crate::outbox::enqueue(&txn, &report, now, now).await?;
            }
        }
        txn.commit()
            .await
            .map_err(|e| db_err(e, format!("finishing command {id}")))
    }
}

/// How many commands a sticky comment lists (the newest).
const NOTES: u64 = 5;

/// The newest commands given on a PR, oldest first, for its sticky
/// comment.
pub(crate) async fn notes<C: ConnectionTrait>(
    db: &C,
    repository_id: Option<i64>,
    repository: &str,
    pr_number: i64,
) -> Result<Vec<CommandNote>, RepositoryError> {
    let of_repository = match repository_id {
        Some(id) => Column::RepositoryId.eq(id),
        None => Column::RepositoryFullName.eq(repository),
    };
    let mut rows = Entity::find()
        .filter(of_repository)
        .filter(Column::PrNumber.eq(pr_number))
        .order_by_desc(Column::Id)
        .limit(NOTES)
        .all(db)
        .await
        .map_err(|e| db_err(e, "loading the PR's commands"))?;
    rows.reverse();
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            Some(CommandNote {
                command: CommentCommand::parse(&row.command)?,
                author_login: row.author_login,
                button: row.comment_id.is_none(),
                at: row.created_at,
                end: CommandEnd::parse(&row.status),
                outcome: row.outcome,
            })
        })
        .collect())
}
