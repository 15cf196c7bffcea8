//! Fresh, throw-away databases for tests: a SQLite file in a temporary
//! folder, or a new PostgreSQL database created next to `TEST_DATABASE_URL`
//! and dropped when the test ends.
//!
//! Without `TEST_DATABASE_URL` the PostgreSQL variant is skipped locally but
//! fails under CI (`CI=true`), so a CI run can never pass without having
//! tested PostgreSQL.

use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

use crate::connect;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that exists only for one test.
#[derive(Debug)]
pub struct TestDatabase {
    pub backend: Backend,
    pub url: String,
    pub db: DatabaseConnection,
    _dir: Option<tempfile::TempDir>,
    drop_pg: Option<(String, String)>,
}

impl TestDatabase {
    /// A migrated database of `backend`; `None` only for PostgreSQL outside
    /// CI without `TEST_DATABASE_URL`.
    pub async fn migrated(backend: Backend) -> Option<Self> {
        let test_db = Self::empty(backend).await?;
        crate::migrate(&test_db.db)
            .await
            .expect("migrating the test database");
        Some(test_db)
    }

    /// A database with no tables at all.
    pub async fn empty(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => Some(Self::sqlite().await),
            Backend::Postgres => Self::postgres().await,
        }
    }

    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("creating a temporary folder");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("ephemera.db").display()
        );
        let db = connect(&url)
            .await
            .expect("opening the SQLite test database");
        Self {
            backend: Backend::Sqlite,
            url,
            db,
            _dir: Some(dir),
            drop_pg: None,
        }
    }

    async fn postgres() -> Option<Self> {
        let Some(admin_url) = postgres_admin_url() else {
            eprintln!("skipping the PostgreSQL variant: TEST_DATABASE_URL is not set");
            return None;
        };
        let name = format!("ephemera_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("TEST_DATABASE_URL={admin_url} cannot be reached: {e}"));
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("creating a PostgreSQL test database");
        admin.close().await.ok();

        let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        let url = url.to_string();
        let db = connect(&url)
            .await
            .expect("opening the PostgreSQL test database");
        Some(Self {
            backend: Backend::Postgres,
            url,
            db,
            _dir: None,
            drop_pg: Some((admin_url, name)),
        })
    }
}

/// `TEST_DATABASE_URL`, or a panic under CI when it is missing.
fn postgres_admin_url() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            panic!("CI=true but TEST_DATABASE_URL is not set: PostgreSQL tests must run in CI")
        }
        _ => None,
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.drop_pg.take() else {
            return;
        };
        // Drop runs outside async; a short-lived runtime on its own thread
        // removes the database so test runs do not pile them up.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("building a runtime to drop the test database");
            runtime.block_on(async move {
                if let Ok(admin) = Database::connect(&admin_url).await {
                    let _ = admin
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .await;
                    admin.close().await.ok();
                }
            });
        })
        .join();
    }
}

/// Runs each named `async fn(TestDatabase)` once on SQLite and once on
/// PostgreSQL, as `sqlite::<name>` and `postgres::<name>` tests.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = $crate::testing::TestDatabase::migrated($crate::testing::Backend::Sqlite)
                        .await
                        .expect("SQLite is always available");
                    super::$name(db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(db) = $crate::testing::TestDatabase::migrated($crate::testing::Backend::Postgres).await else {
                        return;
                    };
                    super::$name(db).await;
                }
            )*
        }
    };
}
