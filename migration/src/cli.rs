use anyhow::Context as _;
use sea_orm_migration::sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, Statement,
    TransactionTrait,
};
use sea_orm_migration::{MigrationStatus, MigratorTrait};

use crate::Migrator;

/// Key of the PostgreSQL advisory lock that serialises schema changes, so
/// that replicas starting together migrate once. ("ephemera" in ASCII.)
const MIGRATION_LOCK_KEY: i64 = 0x6570_6865_6d65_7261;

#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum MigrateCommand {
    /// Apply pending migrations (all of them unless -n is given).
    Up {
        /// Apply at most this many.
        #[arg(short = 'n', long = "num")]
        num: Option<u32>,
    },
    /// Roll back applied migrations, newest first.
    Down {
        /// How many to roll back.
        #[arg(short = 'n', long = "num", default_value_t = 1)]
        num: u32,
    },
    /// List every migration and whether it is applied.
    Status,
}

/// Runs one migrate command and returns what to print.
pub async fn run(db: &DatabaseConnection, command: &MigrateCommand) -> anyhow::Result<String> {
    match command {
        MigrateCommand::Up { num } => {
            let applied = locked(db, Direction::Up(*num)).await?;
            Ok(summary("applied", &applied))
        }
        MigrateCommand::Down { num } => {
            let rolled_back = locked(db, Direction::Down(*num)).await?;
            Ok(summary("rolled back", &rolled_back))
        }
        MigrateCommand::Status => {
            let migrations = Migrator::get_migration_with_status(db)
                .await
                .context("reading migration status")?;
            let mut out = String::new();
            for m in &migrations {
                let status = match m.status() {
                    MigrationStatus::Applied => "applied",
                    MigrationStatus::Pending => "pending",
                };
                out.push_str(&format!("{status:<8} {}\n", m.name()));
            }
            Ok(out)
        }
    }
}

/// Applies every pending migration under the migration lock; returns the
/// names of those this call applied (none when another replica got there
/// first).
pub async fn apply_pending(db: &DatabaseConnection) -> anyhow::Result<Vec<String>> {
    locked(db, Direction::Up(None)).await
}

fn summary(verb: &str, names: &[String]) -> String {
    if names.is_empty() {
        return format!("nothing to do: no migration {verb}\n");
    }
    let mut out = String::new();
    for name in names {
        out.push_str(&format!("{verb} {name}\n"));
    }
    out
}

#[derive(Debug, Clone, Copy)]
enum Direction {
    Up(Option<u32>),
    Down(u32),
}

async fn locked(db: &DatabaseConnection, direction: Direction) -> anyhow::Result<Vec<String>> {
    // Schema changes run in one transaction, so a failed run applies nothing
    // (both PostgreSQL and SQLite have transactional DDL).
    let txn = db
        .begin()
        .await
        .context("opening the migration transaction")?;
    if db.get_database_backend() == DatabaseBackend::Postgres {
        // Transaction-scoped advisory lock: replicas starting together wait
        // here and then find nothing pending; a replica that dies mid-way
        // releases it with its connection. SQLite is single-writer: its own
        // file lock serialises writers.
        txn.execute_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [MIGRATION_LOCK_KEY.into()],
        ))
        .await
        .context("taking the migration lock")?;
    }
    let changed = migrate(&txn, direction).await?;
    txn.commit().await.context("committing migrations")?;
    Ok(changed)
}

async fn migrate(txn: &DatabaseTransaction, direction: Direction) -> anyhow::Result<Vec<String>> {
    match direction {
        Direction::Up(num) => {
            let pending = names(Migrator::get_pending_migrations(txn).await)?;
            let count = num.map_or(pending.len(), |n| (n as usize).min(pending.len()));
            Migrator::up(txn, num)
                .await
                .context("applying migrations")?;
            Ok(pending.into_iter().take(count).collect())
        }
        Direction::Down(num) => {
            let mut applied = names(Migrator::get_applied_migrations(txn).await)?;
            applied.reverse();
            let count = (num as usize).min(applied.len());
            Migrator::down(txn, Some(num))
                .await
                .context("rolling back migrations")?;
            Ok(applied.into_iter().take(count).collect())
        }
    }
}

fn names(
    migrations: Result<Vec<sea_orm_migration::Migration>, sea_orm_migration::sea_orm::DbErr>,
) -> anyhow::Result<Vec<String>> {
    Ok(migrations
        .context("reading the migration table")?
        .iter()
        .map(|m| m.name().to_owned())
        .collect())
}
