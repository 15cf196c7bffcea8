use ephemera_application::ports::RepositoryError;
use sea_orm::{DbErr, RuntimeErr, SqlErr};

/// Translates a driver error into what the ports speak: a uniqueness
/// violation is a conflict, anything else unexpected with its context.
pub(crate) fn db_err(err: DbErr, context: impl Into<String>) -> RepositoryError {
    let context = context.into();
    if is_unavailable(&err) {
        return RepositoryError::unavailable(context, err);
    }
    if is_transient_conflict(&err) {
        // A deadlock or serialization failure aborted the transaction;
        // running it again succeeds.
        return RepositoryError::Conflict(format!("{context}: {err}"));
    }
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => RepositoryError::Conflict(context),
        _ => match err {
            DbErr::RecordNotUpdated => RepositoryError::NotFound(context),
            other => RepositoryError::Unexpected(anyhow::Error::new(other).context(context)),
        },
    }
}

/// A row whose contents the domain refuses: corrupt data, not a panic.
pub(crate) fn corrupt(table: &str, id: i64, err: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("corrupt row {id} in {table}: {err}")
}

/// The database cannot be reached (refused, dropped, pool exhausted), as
/// opposed to refusing a statement.
fn is_unavailable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => match e.as_ref() {
            sea_orm::sqlx::Error::Io(_)
            | sea_orm::sqlx::Error::PoolTimedOut
            | sea_orm::sqlx::Error::PoolClosed
            | sea_orm::sqlx::Error::Tls(_) => true,
            // PostgreSQL shutting down or starting (57P01-57P03), a
            // connection exception (08xxx), too many connections (53300),
            // the database gone (3D000) or not accepting connections
            // (55000 on connect, e.g. datallowconn = false): the server,
            // not the statement.
            sea_orm::sqlx::Error::Database(db) => db.code().is_some_and(|c| {
                c.starts_with("08")
                    || c.starts_with("57P0")
                    || c == "53300"
                    || c == "3D000"
                    || (c == "55000"
                        && db.message().contains("not currently accepting connections"))
            }),
            _ => false,
        },
        DbErr::Conn(_) => true,
        _ => false,
    }
}

/// PostgreSQL deadlock (40P01) or serialization failure (40001).
fn is_transient_conflict(err: &DbErr) -> bool {
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match e.as_ref() {
                sea_orm::sqlx::Error::Database(db) => {
                    matches!(db.code().as_deref(), Some("40P01" | "40001"))
                }
                _ => false,
            }
        }
        _ => false,
    }
}
