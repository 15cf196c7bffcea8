use anyhow::Context as _;
use async_trait::async_trait;
use ephemera_application::ports::HealthProbe;
use sea_orm::DatabaseConnection;

/// Readiness: the database answers.
#[derive(Debug, Clone)]
pub struct SqlHealthProbe {
    db: DatabaseConnection,
}

impl SqlHealthProbe {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

#[async_trait]
impl HealthProbe for SqlHealthProbe {
    async fn check_database(&self) -> anyhow::Result<()> {
        self.db.ping().await.context("database did not answer")
    }
}
