//! The work queue: environments with `work_due_at` set, claimed with a
//! lease. PostgreSQL claims with `FOR UPDATE SKIP LOCKED`, so concurrent
//! workers in any number of processes each get a different environment;
//! SQLite has a single writer, so its UPDATE … WHERE id = (SELECT …) is
//! atomic as it stands.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ephemera_application::ports::{CapScope, RepositoryError, WorkQueue, WorkTx};
use ephemera_domain::{
    Deployment, DeploymentId, Environment, EnvironmentId, EnvironmentStatus, SlotUse,
};
use sea_orm::sea_query::{Expr, ExprTrait, SimpleExpr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement, Value,
};

use crate::entities::environments::{Column, Entity};
use crate::error::db_err;
use crate::tx::{Reporting, SqlTx};
use crate::{deployments, environments, slots};

/// What counts as an environment's last activity.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Activity {
    /// The PR's newest event (or the environment's creation).
    PullRequest,
    /// That, or its last deployment or wake, whichever is later.
    PullRequestOrDeployment,
}

impl SqlWorkQueue {
    /// Environments in `scope` whose delay in `column` (seconds; `default`
    /// where NULL, none without one) has passed since their last activity
    /// at `now`. Few distinct delays are in use (the operator's and what
    /// some repositories set): one indexed query per delay.
    async fn overdue(
        &self,
        column: Column,
        default: Option<Duration>,
        scope: SimpleExpr,
        activity: Activity,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<EnvironmentId>, RepositoryError> {
        let context = || format!("looking for environments past their {column:?}");
        let delays: Vec<Option<i64>> = Entity::find()
            .select_only()
            .column(column)
            .distinct()
            .filter(scope.clone())
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(|e| db_err(e, context()))?;
        let mut ids = Vec::new();
        for stored in delays {
            let Some(delay) = stored
                .map(|secs| Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
                .or(default)
            else {
                continue;
            };
            let before = now - chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
            let with_delay = match stored {
                Some(secs) => column.eq(secs),
                None => column.is_null(),
            };
            let mut query = Entity::find()
                .select_only()
                .column(Column::Id)
                .filter(scope.clone())
                .filter(with_delay)
                .filter(
                    Expr::col(Column::PrUpdatedAt)
                        .if_null(Expr::col(Column::CreatedAt))
                        .lt(before),
                );
            if activity == Activity::PullRequestOrDeployment {
                query = query.filter(
                    Column::LastDeployedAt
                        .is_null()
                        .or(Column::LastDeployedAt.lt(before)),
                );
            }
            let found: Vec<i64> = query
                .order_by_asc(Column::Id)
                .limit(limit.saturating_sub(ids.len() as u64))
                .into_tuple()
                .all(&self.db)
                .await
                .map_err(|e| db_err(e, context()))?;
            ids.extend(found);
            if ids.len() as u64 >= limit {
                break;
            }
        }
        ids.into_iter()
            .map(|id| EnvironmentId::new(id).map_err(|e| RepositoryError::Unexpected(e.into())))
            .collect()
    }
}

/// [`WorkQueue`] on SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub struct SqlWorkQueue {
    db: DatabaseConnection,
    reporting: Reporting,
}

impl SqlWorkQueue {
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            reporting: Reporting::Off,
        }
    }

    /// Queue reports to GitHub in each transaction (when reporting is on).
    pub fn reporting(mut self, reporting: Reporting) -> Self {
        self.reporting = reporting;
        self
    }

    fn statement(&self, postgres: &str, sqlite: &str, values: Vec<Value>) -> Statement {
        let backend = self.db.get_database_backend();
        let sql = match backend {
            DatabaseBackend::Postgres => postgres,
            _ => sqlite,
        };
        Statement::from_sql_and_values(backend, sql, values)
    }
}

const CLAIM_POSTGRES: &str = "UPDATE environments SET lease_owner = $1, lease_expires_at = $2 \
     WHERE id = (SELECT id FROM environments \
                 WHERE work_due_at IS NOT NULL AND work_due_at <= $3 \
                   AND (lease_expires_at IS NULL OR lease_expires_at < $3) \
                 ORDER BY work_due_at LIMIT 1 FOR UPDATE SKIP LOCKED) \
     RETURNING id";

const CLAIM_SQLITE: &str = "UPDATE environments SET lease_owner = ?1, lease_expires_at = ?2 \
     WHERE id = (SELECT id FROM environments \
                 WHERE work_due_at IS NOT NULL AND work_due_at <= ?3 \
                   AND (lease_expires_at IS NULL OR lease_expires_at < ?3) \
                 ORDER BY work_due_at LIMIT 1) \
     RETURNING id";

fn lease_end(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX)
}

#[async_trait]
impl WorkQueue for SqlWorkQueue {
    async fn claim(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Option<EnvironmentId>, RepositoryError> {
        let statement = self.statement(
            CLAIM_POSTGRES,
            CLAIM_SQLITE,
            vec![owner.into(), lease_end(now, lease).into(), now.into()],
        );
        let row = self
            .db
            .query_one_raw(statement)
            .await
            .map_err(|e| db_err(e, "claiming work"))?;
        row.map(|row| {
            let id: i64 = row
                .try_get("", "id")
                .map_err(|e| db_err(e, "reading the claimed id"))?;
            EnvironmentId::new(id).map_err(|e| RepositoryError::Unexpected(e.into()))
        })
        .transpose()
    }

    async fn renew(
        &self,
        id: EnvironmentId,
        owner: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        let result = Entity::update_many()
            .col_expr(Column::LeaseExpiresAt, Expr::value(until))
            .filter(Column::Id.eq(id.get()))
            .filter(Column::LeaseOwner.eq(owner))
            .exec(&self.db)
            .await
            .map_err(|e| db_err(e, format!("renewing the lease on environment {id}")))?;
        Ok(result.rows_affected == 1)
    }

    async fn release(&self, id: EnvironmentId, owner: &str) -> Result<(), RepositoryError> {
        Entity::update_many()
            .col_expr(Column::LeaseOwner, Expr::value(Option::<String>::None))
            .col_expr(
                Column::LeaseExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(Column::Id.eq(id.get()))
            .filter(Column::LeaseOwner.eq(owner))
            .exec(&self.db)
            .await
            .map_err(|e| db_err(e, format!("releasing the lease on environment {id}")))?;
        Ok(())
    }

    async fn idle_since(
        &self,
        now: DateTime<Utc>,
        default_ttl: Option<Duration>,
        limit: u64,
    ) -> Result<Vec<EnvironmentId>, RepositoryError> {
        self.overdue(
            Column::IdleTtlSeconds,
            default_ttl,
            Expr::cust(environments::LIVE),
            Activity::PullRequest,
            now,
            limit,
        )
        .await
    }

    async fn sleepy(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<EnvironmentId>, RepositoryError> {
        self.overdue(
            Column::SleepAfterSeconds,
            None,
            Column::Status.eq(EnvironmentStatus::Ready.as_str()),
            Activity::PullRequestOrDeployment,
            now,
            limit,
        )
        .await
    }

    async fn begin(&self) -> Result<Box<dyn WorkTx>, RepositoryError> {
        Ok(Box::new(SqlTx::begin(&self.db, self.reporting).await?))
    }
}

#[async_trait]
impl WorkTx for SqlTx {
    async fn slot_use(
        &mut self,
        env: &Environment,
        scope: CapScope,
    ) -> Result<SlotUse, RepositoryError> {
        slots::slot_use(&self.txn, env, scope).await
    }

    async fn note_delivery(
        &mut self,
        delivery: &ephemera_domain::DeliveryId,
        note: &str,
    ) -> Result<(), RepositoryError> {
        use crate::entities::webhook_deliveries as log;
        let context = || format!("noting on delivery {delivery}");
        let Some(entry) = log::Entity::find()
            .filter(log::Column::DeliveryId.eq(delivery.to_string()))
            .one(&self.txn)
            .await
            .map_err(|e| db_err(e, context()))?
        else {
            // Pruned by retention meanwhile: nothing left to tell.
            return Ok(());
        };
        let reason = match entry.reason {
            Some(reason) => format!("{reason}; {note}"),
            None => note.to_owned(),
        };
        log::Entity::update_many()
            .col_expr(log::Column::Reason, Expr::value(reason))
            .filter(log::Column::Id.eq(entry.id))
            .exec(&self.txn)
            .await
            .map_err(|e| db_err(e, context()))?;
        Ok(())
    }

    async fn wake_waiting(
        &mut self,
        env: &Environment,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        slots::wake_waiting(&self.txn, env, now).await
    }

    async fn environment(
        &mut self,
        id: EnvironmentId,
    ) -> Result<Option<Environment>, RepositoryError> {
        environments::get_locked(&self.txn, id).await
    }

    async fn holds_lease(
        &mut self,
        id: EnvironmentId,
        owner: &str,
    ) -> Result<bool, RepositoryError> {
        let holder: Option<Option<String>> = Entity::find_by_id(id.get())
            .select_only()
            .column(Column::LeaseOwner)
            .into_tuple()
            .one(&self.txn)
            .await
            .map_err(|e| db_err(e, format!("reading the lease on environment {id}")))?;
        Ok(holder.flatten().as_deref() == Some(owner))
    }

    async fn cancel_active_deployments(
        &mut self,
        environment_id: EnvironmentId,
        except: Option<DeploymentId>,
        now: DateTime<Utc>,
    ) -> Result<u64, RepositoryError> {
        deployments::cancel_active(&self.txn, environment_id, except, now).await
    }

    async fn active_deployment(
        &mut self,
        environment_id: EnvironmentId,
    ) -> Result<Option<Deployment>, RepositoryError> {
        deployments::active(&self.txn, environment_id).await
    }

    async fn deployment(
        &mut self,
        id: DeploymentId,
    ) -> Result<Option<Deployment>, RepositoryError> {
        deployments::get(&self.txn, id).await
    }

    async fn newer_queued(
        &mut self,
        environment_id: EnvironmentId,
        than: DeploymentId,
    ) -> Result<bool, RepositoryError> {
        deployments::newer_queued(&self.txn, environment_id, than).await
    }
}
