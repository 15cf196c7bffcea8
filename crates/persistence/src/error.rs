use ephemera_application::ports::RepositoryError;
use sea_orm::{DbErr, SqlErr};

/// Translates a driver error into what the ports speak: a uniqueness
/// violation is a conflict, anything else unexpected with its context.
pub(crate) fn db_err(err: DbErr, context: impl Into<String>) -> RepositoryError {
    let context = context.into();
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
