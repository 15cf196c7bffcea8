use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConnectError {
    #[error("`{0}` is not a sqlite:// or postgres:// URL")]
    Unsupported(String),
    #[error("cannot connect: {0}")]
    Unreachable(String),
}

/// How long a request waits for a pooled connection before the database
/// counts as down (readiness then answers 503 instead of hanging).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// A pooled connection idle at least this long is pinged before use (one
/// round trip) so a connection the server or a proxy dropped is replaced
/// rather than failing a request. One in use moments ago is handed out
/// as it is: pinging on every acquire (the pool's default) cost a round
/// trip per statement or transaction, on the hot path of every webhook and
/// read (issue 17).
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// Opens a connection pool to `url` (`sqlite://…` or `postgres://…`).
///
/// SQLite runs in WAL mode with foreign keys on and a busy timeout, on one
/// pooled connection: SQLite has a single writer anyway, and one connection
/// rules out "database is locked" errors between our own transactions.
pub async fn connect(url: &str) -> Result<DatabaseConnection, ConnectError> {
    let is_sqlite = url.starts_with("sqlite:");
    let is_postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if !is_sqlite && !is_postgres {
        return Err(ConnectError::Unsupported(redact_url(url)));
    }

    let mut options = ConnectOptions::new(url);
    options
        .sqlx_logging(false)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire_if_idle_for(PING_IF_IDLE_FOR);
    if is_sqlite {
        options.max_connections(1).map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5))
        });
    } else {
        options.max_connections(16).min_connections(1);
    }

    Database::connect(options)
        .await
        .map_err(|err| ConnectError::Unreachable(err.to_string()))
}

/// How many read-only connections SQLite readers share.
const SQLITE_READERS: u32 = 4;

/// Connections for reads only (the REST API's and the dashboard's lists).
///
/// On a SQLite file, a pool of its own of read-only connections: WAL lets
/// them read while the one writer writes, so a flood of reads never queues
/// a webhook behind it (nor past its acquire timeout). On PostgreSQL, or an
/// in-memory SQLite database (which another pool could not see), `writer`
/// itself.
pub async fn connect_reader(
    url: &str,
    writer: &DatabaseConnection,
) -> Result<DatabaseConnection, ConnectError> {
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    if !url.starts_with("sqlite:") || in_memory {
        return Ok(writer.clone());
    }
    let mut options = ConnectOptions::new(url);
    options
        .sqlx_logging(false)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire_if_idle_for(PING_IF_IDLE_FOR)
        .max_connections(SQLITE_READERS)
        .map_sqlx_sqlite_opts(|opts| {
            opts.read_only(true)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5))
        });
    Database::connect(options)
        .await
        .map_err(|err| ConnectError::Unreachable(err.to_string()))
}

/// The URL without its password, fit for an error message or a log line.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/eph"),
            "postgres://app:***@db:5432/eph"
        );
        assert_eq!(
            redact_url("sqlite://ephemera.db?mode=rwc"),
            "sqlite://ephemera.db?mode=rwc"
        );
    }

    #[tokio::test]
    async fn unsupported_scheme_is_refused() {
        let err = connect("mysql://root:pw@localhost/x").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "`mysql://root:***@localhost/x` is not a sqlite:// or postgres:// URL"
        );
    }
}
