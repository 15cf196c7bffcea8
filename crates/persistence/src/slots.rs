//! Caps on live previews: counting what holds a slot and who waits, under
//! one lock per installation so that replicas admit one preview at a time.

use chrono::{DateTime, Utc};
use ephemera_application::ports::{CapScope, RepositoryError};
use ephemera_domain::{Environment, EnvironmentStatus, SlotUse};
use sea_orm::sea_query::{Expr, ExprTrait, SimpleExpr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, PaginatorTrait, QueryFilter,
    Statement, Value,
};

use crate::entities::environments::{Column, Entity};
use crate::error::db_err;

/// The statuses that hold a slot, as stored.
fn holding() -> Vec<&'static str> {
    EnvironmentStatus::ALL
        .into_iter()
        .filter(|s| s.holds_slot())
        .map(EnvironmentStatus::as_str)
        .collect()
}

/// The rows of `env`'s scope, `None` when it has none (no installation).
fn in_scope(env: &Environment, scope: CapScope) -> Option<SimpleExpr> {
    match scope {
        CapScope::Installation => env
            .installation_id
            .map(|id| Column::InstallationId.eq(id.get())),
        CapScope::Repository => Some(match env.repository_id {
            Some(id) => Column::RepositoryId.eq(id),
            None => Column::RepositoryFullName.eq(env.repository.as_str()),
        }),
    }
}

/// Serialises admissions per installation (per repository without one) on
/// PostgreSQL until the transaction ends; SQLite has a single writer.
async fn lock<C: ConnectionTrait>(db: &C, env: &Environment) -> Result<(), RepositoryError> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    let key = match (env.installation_id, env.repository_id) {
        (Some(id), _) => format!("ephemera-slots:installation:{id}"),
        (None, Some(id)) => format!("ephemera-slots:repository:{id}"),
        (None, None) => format!("ephemera-slots:repository:{}", env.repository),
    };
    db.execute_raw(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "SELECT pg_advisory_xact_lock(hashtext($1))",
        [Value::from(key)],
    ))
    .await
    .map_err(|e| db_err(e, "locking the preview caps"))?;
    Ok(())
}

pub(crate) async fn slot_use<C: ConnectionTrait>(
    db: &C,
    env: &Environment,
    scope: CapScope,
) -> Result<SlotUse, RepositoryError> {
    lock(db, env).await?;
    let Some(scope_filter) = in_scope(env, scope) else {
        return Ok(SlotUse {
            in_use: 0,
            waiting_ahead: 0,
        });
    };
    let context = || format!("counting previews around environment {}", env.id);
    let in_use = Entity::find()
        .filter(scope_filter.clone())
        .filter(Column::Status.is_in(holding()))
        .filter(Column::Id.ne(env.id.get()))
        .count(db)
        .await
        .map_err(|e| db_err(e, context()))?;
    let mut waiting = Entity::find()
        .filter(scope_filter)
        .filter(Column::Status.eq(EnvironmentStatus::Waiting.as_str()))
        .filter(Column::Id.ne(env.id.get()));
    if let Some(since) = env.waiting_since() {
        // Ahead: waiting since earlier, or since the same moment with a
        // smaller id (a strict order every replica agrees on).
        waiting = waiting.filter(
            Column::WaitingSince.lt(since).or(Column::WaitingSince
                .eq(since)
                .and(Column::Id.lt(env.id.get()))),
        );
    }
    let waiting_ahead = waiting.count(db).await.map_err(|e| db_err(e, context()))?;
    Ok(SlotUse {
        in_use,
        waiting_ahead,
    })
}

pub(crate) async fn wake_waiting<C: ConnectionTrait>(
    db: &C,
    env: &Environment,
    now: DateTime<Utc>,
) -> Result<(), RepositoryError> {
    // Every waiting preview of the scope looks again: the first in line
    // may start, and everyone behind it learns its new place (the order
    // itself is `waiting_since`, which this does not touch).
    for scope in [CapScope::Repository, CapScope::Installation] {
        let Some(scope_filter) = in_scope(env, scope) else {
            continue;
        };
        Entity::update_many()
            .col_expr(Column::WorkDueAt, Expr::value(now))
            .filter(scope_filter)
            .filter(Column::Status.eq(EnvironmentStatus::Waiting.as_str()))
            .exec(db)
            .await
            .map_err(|e| db_err(e, "waking the previews waiting for a slot"))?;
    }
    Ok(())
}
