//! Every migration goes up, comes down to nothing, and goes up again, on
//! both databases.

#![allow(clippy::unwrap_used)]

use ephemera_application::ports::EnvironmentRepository;
use ephemera_domain::{
    CommitSha, EnvironmentStatus, NewEnvironment, PrNumber, RepositoryFullName, StatusChange,
};
use ephemera_persistence::SqlEnvironmentRepository;
use ephemera_persistence::testing::{Backend, TestDatabase};
use migration::{MigrateCommand, MigratorTrait};
use sea_orm::{ConnectionTrait, Statement};

async fn table_count(t: &TestDatabase) -> i64 {
    let sql = match t.backend {
        Backend::Sqlite => {
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name <> 'seaql_migrations'"
        }
        Backend::Postgres => {
            "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = 'public' \
             AND table_name <> 'seaql_migrations'"
        }
    };
    let row =
        t.db.query_one_raw(Statement::from_string(t.db.get_database_backend(), sql))
            .await
            .unwrap()
            .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

fn migration_count() -> usize {
    migration::Migrator::migrations().len()
}

async fn round_trip(backend: Backend) {
    let Some(t) = TestDatabase::empty(backend).await else {
        return;
    };
    let up = migration::run(&t.db, &MigrateCommand::Up { num: None })
        .await
        .unwrap();
    assert_eq!(up.lines().count(), migration_count(), "{up}");
    assert_eq!(
        table_count(&t).await,
        10,
        "7 tables, the leases, the /preview commands and the status history"
    );

    let status = migration::run(&t.db, &MigrateCommand::Status)
        .await
        .unwrap();
    assert!(
        status.lines().all(|l| l.starts_with("applied ")),
        "{status}"
    );

    let down = migration::run(&t.db, &MigrateCommand::Down { num: 99 })
        .await
        .unwrap();
    assert_eq!(down.lines().count(), migration_count(), "{down}");
    let newest = migration::Migrator::migrations()
        .last()
        .unwrap()
        .name()
        .to_owned();
    assert!(
        down.starts_with(&format!("rolled back {newest}")),
        "newest first: {down}"
    );
    assert_eq!(table_count(&t).await, 0);

    let status = migration::run(&t.db, &MigrateCommand::Status)
        .await
        .unwrap();
    assert!(
        status.lines().all(|l| l.starts_with("pending ")),
        "{status}"
    );

    migration::run(&t.db, &MigrateCommand::Up { num: None })
        .await
        .unwrap();
    assert_eq!(
        table_count(&t).await,
        10,
        "7 tables, the leases, the /preview commands and the status history"
    );
    let again = migration::run(&t.db, &MigrateCommand::Up { num: None })
        .await
        .unwrap();
    assert_eq!(again, "nothing to do: no migration applied\n");
}

/// Environments that existed before the status history start it with their
/// current status, reason and time.
async fn the_status_history_starts_from_what_environments_were(backend: Backend) {
    let Some(t) = TestDatabase::empty(backend).await else {
        return;
    };
    migration::run(&t.db, &MigrateCommand::Up { num: None })
        .await
        .unwrap();
    let repo = SqlEnvironmentRepository::new(t.db.clone());
    let at = chrono::DateTime::from_timestamp(1_750_000_000, 0).unwrap();
    let mut env = repo
        .insert(
            NewEnvironment {
                repository: RepositoryFullName::parse("octo/web").unwrap(),
                repository_id: None,
                pr_number: PrNumber::new(4).unwrap(),
                pr_title: "Change".into(),
                branch_name: "change".into(),
                base_ref: "main".into(),
                commit_sha: CommitSha::parse(&"a".repeat(40)).unwrap(),
                installation_id: None,
                owner: None,
                pr_updated_at: None,
                is_fork: false,
                draft: false,
                labels: vec![],
            },
            at,
        )
        .await
        .unwrap();
    let later = at + chrono::Duration::minutes(3);
    env.begin_destroy("PR closed", later).unwrap();
    repo.update(&env).await.unwrap();
    // Back to before the history (it and the one migration after it, the
    // TTL sweep's index), and up again.
    migration::run(&t.db, &MigrateCommand::Down { num: 2 })
        .await
        .unwrap();
    migration::run(&t.db, &MigrateCommand::Up { num: None })
        .await
        .unwrap();

    let history = repo.status_history(env.id, 10).await.unwrap();
    assert_eq!(
        history,
        [StatusChange {
            status: EnvironmentStatus::Destroying,
            reason: Some("PR closed".into()),
            at: later,
        }]
    );
}

#[tokio::test]
async fn sqlite_status_history_backfill() {
    the_status_history_starts_from_what_environments_were(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_status_history_backfill() {
    the_status_history_starts_from_what_environments_were(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_round_trip() {
    round_trip(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_round_trip() {
    round_trip(Backend::Postgres).await;
}

#[tokio::test]
async fn postgres_replicas_migrating_together_migrate_once() {
    let Some(t) = TestDatabase::empty(Backend::Postgres).await else {
        return;
    };
    let mut handles = Vec::new();
    for _ in 0..4 {
        let db = ephemera_persistence::connect(&t.url).await.unwrap();
        handles.push(tokio::spawn(async move {
            ephemera_persistence::migrate(&db).await
        }));
    }
    let mut applied = 0;
    for handle in handles {
        applied += handle.await.unwrap().unwrap().len();
    }
    assert_eq!(
        applied,
        migration_count(),
        "each migration applied by exactly one replica"
    );
    assert_eq!(
        table_count(&t).await,
        10,
        "7 tables, the leases, the /preview commands and the status history"
    );
}
