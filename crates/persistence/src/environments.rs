use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ephemera_application::PageRequest;
use ephemera_application::ports::{EnvironmentFilter, EnvironmentRepository, RepositoryError};
use ephemera_domain::{
    CommitSha, Environment, EnvironmentId, EnvironmentRecord, EnvironmentStatus, GithubUserId,
    InstallationId, InstalledRepository, Namespace, NewEnvironment, Owner, PrNumber,
    RepositoryFullName, StatusChange,
};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ColumnTrait, Condition, ConnectionTrait,
    DatabaseBackend, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Select, Set, TransactionTrait,
};

use crate::entities::environment_status_changes as history;
use crate::entities::environments::{ActiveModel, Column, Entity, Model};
use crate::error::{corrupt, db_err};

/// [`EnvironmentRepository`] on SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub struct SqlEnvironmentRepository {
    db: DatabaseConnection,
}

impl SqlEnvironmentRepository {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

impl TryFrom<Model> for Environment {
    type Error = anyhow::Error;

    fn try_from(row: Model) -> Result<Self, Self::Error> {
        let id = row.id;
        let bad = |e: ephemera_domain::ValidationError| corrupt("environments", id, e);
        let owner = match (row.owner_github_id, row.owner_login) {
            (Some(github_id), Some(login)) => Some(Owner {
                github_id: GithubUserId::new(github_id).map_err(bad)?,
                login,
            }),
            _ => None,
        };
        Ok(Environment::rehydrate(EnvironmentRecord {
            id: EnvironmentId::new(row.id).map_err(bad)?,
            repository: RepositoryFullName::parse(&row.repository_full_name).map_err(bad)?,
            repository_id: row.repository_id,
            pr_number: PrNumber::new(row.pr_number).map_err(bad)?,
            pr_title: row.pr_title,
            branch_name: row.branch_name,
            base_ref: row.base_ref,
            commit_sha: CommitSha::parse(&row.commit_sha).map_err(bad)?,
            namespace: Namespace::parse(&row.namespace).map_err(bad)?,
            environment_url: row.environment_url,
            status: row.status.parse::<EnvironmentStatus>().map_err(bad)?,
            installation_id: row
                .installation_id
                .map(InstallationId::new)
                .transpose()
                .map_err(bad)?,
            owner,
            error_message: row.error_message,
            last_deployed_at: row.last_deployed_at,
            pr_updated_at: row.pr_updated_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
            destroyed_at: row.destroyed_at,
            status_reason: row.status_reason,
            work_due_at: row.work_due_at,
            work_attempts: u32::try_from(row.work_attempts)
                .map_err(|e| corrupt("environments", id, e))?,
            trusted_sha: row
                .trusted_sha
                .as_deref()
                .map(CommitSha::parse)
                .transpose()
                .map_err(bad)?,
            is_fork: row.is_fork,
            draft: row.draft,
            labels: serde_json::from_str(&row.labels)
                .map_err(|e| corrupt("environments", id, e))?,
            waiting_since: row.waiting_since,
            idle_ttl: seconds(row.idle_ttl_seconds).map_err(|e| corrupt("environments", id, e))?,
            config_notes: serde_json::from_str(&row.config_notes)
                .map_err(|e| corrupt("environments", id, e))?,
            deploy_requested_sha: row
                .deploy_requested_sha
                .as_deref()
                .map(CommitSha::parse)
                .transpose()
                .map_err(bad)?,
            sleep_after: seconds(row.sleep_after_seconds)
                .map_err(|e| corrupt("environments", id, e))?,
        }))
    }
}

/// A duration stored as whole seconds.
pub(crate) fn seconds(
    stored: Option<i64>,
) -> Result<Option<std::time::Duration>, std::num::TryFromIntError> {
    stored
        .map(|s| u64::try_from(s).map(std::time::Duration::from_secs))
        .transpose()
}

fn stored_seconds(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Label names (or notes) as stored: a JSON array.
fn labels_json(labels: &[String]) -> String {
    serde_json::Value::from(labels).to_string()
}

fn to_domain(row: Model) -> Result<Environment, RepositoryError> {
    Environment::try_from(row).map_err(RepositoryError::Unexpected)
}

/// Not destroyed and not on the way there.
pub(crate) const LIVE: &str = "status NOT IN ('destroying', 'destroyed')";

/// `FOR UPDATE` where the database has row locks; SQLite has a single
/// writer, so a write transaction already excludes every other.
fn locked(query: Select<Entity>, backend: DatabaseBackend) -> Select<Entity> {
    match backend {
        DatabaseBackend::Sqlite => query,
        _ => query.lock_exclusive(),
    }
}

/// The environment `query` finds, if any; `context` says what was loaded
/// should the database fail.
async fn one<C: ConnectionTrait>(
    db: &C,
    query: Select<Entity>,
    context: &str,
) -> Result<Option<Environment>, RepositoryError> {
    query
        .one(db)
        .await
        .map_err(|e| db_err(e, context))?
        .map(to_domain)
        .transpose()
}

async fn all<C: ConnectionTrait>(
    db: &C,
    query: Select<Entity>,
    context: &str,
) -> Result<Vec<Environment>, RepositoryError> {
    query
        .all(db)
        .await
        .map_err(|e| db_err(e, context))?
        .into_iter()
        .map(to_domain)
        .collect()
}

pub(crate) async fn get<C: ConnectionTrait>(
    db: &C,
    id: EnvironmentId,
) -> Result<Option<Environment>, RepositoryError> {
    one(
        db,
        Entity::find_by_id(id.get()),
        &format!("loading environment {id}"),
    )
    .await
}

/// One environment, row-locked until the transaction ends.
pub(crate) async fn get_locked<C: ConnectionTrait>(
    db: &C,
    id: EnvironmentId,
) -> Result<Option<Environment>, RepositoryError> {
    let query = locked(Entity::find_by_id(id.get()), db.get_database_backend());
    one(db, query, &format!("loading environment {id}")).await
}

/// The PR's environment, row-locked until the transaction ends.
/// The PR's environment: by GitHub's repository id, which survives renames;
/// failing that, a row from before ids were kept, by name.
pub(crate) async fn for_pr_locked<C: ConnectionTrait>(
    db: &C,
    repository_id: Option<i64>,
    repository: &RepositoryFullName,
    pr_number: PrNumber,
) -> Result<Option<Environment>, RepositoryError> {
    let pr = Column::PrNumber.eq(i64::from(pr_number.get()));
    let by_id = repository_id.map(|id| Column::RepositoryId.eq(id));
    let by_name = Column::RepositoryFullName
        .eq(repository.as_str())
        .and(Column::RepositoryId.is_null());
    for condition in by_id.into_iter().chain([by_name]) {
        let query = Entity::find().filter(condition).filter(pr.clone());
        let context = format!("loading environment of {repository}#{pr_number}");
        let found = one(db, locked(query, db.get_database_backend()), &context).await?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

pub(crate) async fn live_of_installation_locked<C: ConnectionTrait>(
    db: &C,
    id: InstallationId,
) -> Result<Vec<Environment>, RepositoryError> {
    let query = Entity::find()
        .filter(Column::InstallationId.eq(id.get()))
        .filter(Expr::cust(LIVE))
        .order_by_asc(Column::Id);
    let context = format!("loading environments of installation {id}");
    all(db, locked(query, db.get_database_backend()), &context).await
}

pub(crate) async fn live_of_repository_locked<C: ConnectionTrait>(
    db: &C,
    repository: &InstalledRepository,
) -> Result<Vec<Environment>, RepositoryError> {
    let same_repository = Condition::any()
        .add(Column::RepositoryId.eq(repository.github_id))
        .add(
            Column::RepositoryId
                .is_null()
                .and(Column::RepositoryFullName.eq(repository.full_name.as_str())),
        );
    let query = Entity::find()
        .filter(same_repository)
        .filter(Expr::cust(LIVE))
        .order_by_asc(Column::Id);
    let context = format!("loading environments of {}", repository.full_name);
    all(db, locked(query, db.get_database_backend()), &context).await
}

pub(crate) async fn insert<C: ConnectionTrait>(
    db: &C,
    new: NewEnvironment,
    now: DateTime<Utc>,
) -> Result<Environment, RepositoryError> {
    let context = format!(
        "recording environment for {}#{}",
        new.repository, new.pr_number
    );
    let row = ActiveModel {
        id: NotSet,
        repository_full_name: Set(new.repository.as_str().to_owned()),
        repository_name: Set(new.repository.name().to_owned()),
        pr_number: Set(i64::from(new.pr_number.get())),
        pr_title: Set(new.pr_title.clone()),
        branch_name: Set(new.branch_name.clone()),
        commit_sha: Set(new.commit_sha.as_str().to_owned()),
        namespace: Set(new.namespace().as_str().to_owned()),
        environment_url: Set(None),
        status: Set(EnvironmentStatus::Pending.as_str().to_owned()),
        installation_id: Set(new.installation_id.map(InstallationId::get)),
        owner_github_id: Set(new.owner.as_ref().map(|o| o.github_id.get())),
        owner_login: Set(new.owner.as_ref().map(|o| o.login.clone())),
        error_message: Set(None),
        last_deployed_at: Set(None),
        pr_updated_at: Set(new.pr_updated_at),
        created_at: Set(now),
        updated_at: Set(now),
        destroyed_at: Set(None),
        status_reason: Set(None),
        // A new environment needs provisioning.
        work_due_at: Set(Some(now)),
        work_attempts: Set(0),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        github_comment_id: Set(None),
        trusted_sha: Set(None),
        repository_id: Set(new.repository_id),
        is_fork: Set(new.is_fork),
        draft: Set(new.draft),
        labels: Set(labels_json(&new.labels)),
        base_ref: Set(new.base_ref.clone()),
        waiting_since: Set(None),
        idle_ttl_seconds: Set(None),
        config_notes: Set("[]".to_owned()),
        sleep_after_seconds: Set(None),
        deploy_requested_sha: Set(None),
    }
    .insert(db)
    .await
    .map_err(|e| db_err(e, context))?;
    let env = to_domain(row)?;
    record_change(db, &StatusChange::current(&env), env.id).await?;
    Ok(env)
}

/// Adds `change` to the environment's status history.
async fn record_change<C: ConnectionTrait>(
    db: &C,
    change: &StatusChange,
    id: EnvironmentId,
) -> Result<(), RepositoryError> {
    history::ActiveModel {
        id: NotSet,
        environment_id: Set(id.get()),
        status: Set(change.status.as_str().to_owned()),
        reason: Set(change.reason.clone()),
        changed_at: Set(change.at),
    }
    .insert(db)
    .await
    .map_err(|e| db_err(e, format!("recording the status of environment {id}")))?;
    Ok(())
}

/// Adds `env`'s status to its history when the stored row has another
/// one; one statement, run before the row is written.
async fn record_if_changed<C: ConnectionTrait>(
    db: &C,
    env: &Environment,
) -> Result<(), RepositoryError> {
    let change = StatusChange::current(env);
    let status = change.status.as_str();
    let stored_otherwise = Query::select()
        .column(Column::Id)
        .expr(Expr::val(status))
        .expr(Expr::val(change.reason.clone()))
        .expr(Expr::val(change.at))
        .from(Entity)
        .and_where(Expr::col(Column::Id).eq(env.id.get()))
        .and_where(Expr::col(Column::Status).ne(status))
        .to_owned();
    let insert = Query::insert()
        .into_table(history::Entity)
        .columns([
            history::Column::EnvironmentId,
            history::Column::Status,
            history::Column::Reason,
            history::Column::ChangedAt,
        ])
        .select_from(stored_otherwise)
        .map_err(|e| {
            RepositoryError::Unexpected(anyhow::anyhow!(
                "recording the status of environment {}: {e}",
                env.id
            ))
        })?
        .to_owned();
    db.execute(&insert)
        .await
        .map_err(|e| db_err(e, format!("recording the status of environment {}", env.id)))?;
    Ok(())
}

pub(crate) async fn update<C: ConnectionTrait>(
    db: &C,
    env: &Environment,
) -> Result<(), RepositoryError> {
    record_if_changed(db, env).await?;
    ActiveModel {
        id: Set(env.id.get()),
        repository_full_name: Set(env.repository.as_str().to_owned()),
        repository_name: Set(env.repository.name().to_owned()),
        pr_number: Set(i64::from(env.pr_number.get())),
        pr_title: Set(env.pr_title.clone()),
        branch_name: Set(env.branch_name.clone()),
        commit_sha: Set(env.commit_sha.as_str().to_owned()),
        namespace: Set(env.namespace.as_str().to_owned()),
        environment_url: Set(env.environment_url().map(str::to_owned)),
        status: Set(env.status().as_str().to_owned()),
        installation_id: Set(env.installation_id.map(InstallationId::get)),
        owner_github_id: Set(env.owner.as_ref().map(|o| o.github_id.get())),
        owner_login: Set(env.owner.as_ref().map(|o| o.login.clone())),
        error_message: Set(env.error_message().map(str::to_owned)),
        last_deployed_at: Set(env.last_deployed_at()),
        pr_updated_at: Set(env.pr_updated_at),
        created_at: Set(env.created_at),
        updated_at: Set(env.updated_at),
        destroyed_at: Set(env.destroyed_at()),
        status_reason: Set(env.status_reason().map(str::to_owned)),
        work_due_at: Set(env.work_due_at()),
        work_attempts: Set(i32::try_from(env.work_attempts()).unwrap_or(i32::MAX)),
        // Leases belong to the work queue; a domain update never moves them.
        lease_owner: NotSet,
        lease_expires_at: NotSet,
        github_comment_id: NotSet,
        trusted_sha: Set(env.trusted_sha.as_ref().map(|s| s.as_str().to_owned())),
        repository_id: Set(env.repository_id),
        is_fork: Set(env.is_fork),
        draft: Set(env.draft),
        labels: Set(labels_json(&env.labels)),
        base_ref: Set(env.base_ref.clone()),
        waiting_since: Set(env.waiting_since()),
        idle_ttl_seconds: Set(env.idle_ttl.map(stored_seconds)),
        sleep_after_seconds: Set(env.sleep_after.map(stored_seconds)),
        deploy_requested_sha: Set(env
            .deploy_requested_sha
            .as_ref()
            .map(|s| s.as_str().to_owned())),
        config_notes: Set(labels_json(&env.config_notes)),
    }
    .update(db)
    .await
    .map_err(|e| db_err(e, format!("environment {}", env.id)))?;
    Ok(())
}

#[async_trait]
impl EnvironmentRepository for SqlEnvironmentRepository {
    async fn get(&self, id: EnvironmentId) -> Result<Option<Environment>, RepositoryError> {
        get(&self.db, id).await
    }

    async fn get_by_namespace(
        &self,
        namespace: &Namespace,
    ) -> Result<Option<Environment>, RepositoryError> {
        let query = Entity::find().filter(Column::Namespace.eq(namespace.as_str()));
        let context = format!("loading environment in namespace {namespace}");
        one(&self.db, query, &context).await
    }

    async fn list(
        &self,
        filter: &EnvironmentFilter,
        page: PageRequest,
    ) -> Result<Vec<Environment>, RepositoryError> {
        let mut query = Entity::find();
        if let Some(repository) = &filter.repository {
            query = query.filter(Column::RepositoryFullName.eq(repository.as_str()));
        }
        if let Some(author) = &filter.author {
            query = query.filter(
                Expr::expr(Func::lower(Expr::col(Column::OwnerLogin))).eq(author.to_lowercase()),
            );
        }
        if let Some(text) = &filter.search {
            // `%`, `_` and `\` are text here, not patterns.
            let escaped = text
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            let pattern = format!("%{escaped}%");
            let contains = |column: Column| {
                Expr::expr(Func::lower(Expr::col(column)))
                    .like(LikeExpr::new(pattern.clone()).escape('\\'))
            };
            query = query.filter(
                Condition::any()
                    .add(contains(Column::PrTitle))
                    .add(contains(Column::BranchName))
                    .add(contains(Column::RepositoryFullName)),
            );
        }
        if let Some(within) = &filter.within {
            query = query.filter(
                Column::RepositoryFullName.is_in(within.iter().map(RepositoryFullName::as_str)),
            );
        }
        if let Some(status) = filter.status {
            query = query.filter(Column::Status.eq(status.as_str()));
        }
        if filter.active_only {
            // A literal, not a bind parameter: only then can PostgreSQL's
            // planner match the partial index `ix_environments_active_id`.
            query = query.filter(Expr::cust("status <> 'destroyed'"));
        }
        if let Some(pr_number) = filter.pr_number {
            query = query.filter(Column::PrNumber.eq(i64::from(pr_number.get())));
        }
        if let Some(cursor) = page.after {
            query = query.filter(Column::Id.lt(cursor.before_id));
        }
        crate::paging::page(
            &self.db,
            query.order_by_desc(Column::Id),
            page.fetch_limit(),
        )
        .await
        .map_err(|e| db_err(e, "listing environments"))?
        .into_iter()
        .map(to_domain)
        .collect()
    }

    async fn insert(
        &self,
        new: NewEnvironment,
        now: DateTime<Utc>,
    ) -> Result<Environment, RepositoryError> {
        let txn = self.begin().await?;
        let env = insert(&txn, new, now).await?;
        finish(txn, env.id).await?;
        Ok(env)
    }

    async fn update(&self, env: &Environment) -> Result<(), RepositoryError> {
        let txn = self.begin().await?;
        update(&txn, env).await?;
        finish(txn, env.id).await
    }

    async fn status_history(
        &self,
        id: EnvironmentId,
        limit: u64,
    ) -> Result<Vec<StatusChange>, RepositoryError> {
        let context = format!("loading the status history of environment {id}");
        let rows = history::Entity::find()
            .filter(history::Column::EnvironmentId.eq(id.get()))
            .order_by_desc(history::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(|e| db_err(e, context.clone()))?;
        rows.into_iter()
            .map(|row| {
                Ok(StatusChange {
                    status: row
                        .status
                        .parse::<EnvironmentStatus>()
                        .map_err(|e| corrupt("environment_status_changes", row.id, e))?,
                    reason: row.reason,
                    at: row.changed_at,
                })
            })
            .collect()
    }
}

impl SqlEnvironmentRepository {
    /// The row and its history change together.
    async fn begin(&self) -> Result<DatabaseTransaction, RepositoryError> {
        self.db
            .begin()
            .await
            .map_err(|e| db_err(e, "opening a transaction"))
    }
}

async fn finish(txn: DatabaseTransaction, id: EnvironmentId) -> Result<(), RepositoryError> {
    txn.commit()
        .await
        .map_err(|e| db_err(e, format!("storing environment {id}")))
}
