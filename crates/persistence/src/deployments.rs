use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ephemera_application::PageRequest;
use ephemera_application::ports::{DeploymentRepository, RepositoryError};
use ephemera_domain::{
    CommitSha, DeliveryId, Deployment, DeploymentId, DeploymentRecord, DeploymentStatus,
    EnvironmentId, NewDeployment,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder, Set, UpdateMany,
};

use crate::entities::deployments::{ActiveModel, Column, Entity, Model};
use crate::error::{corrupt, db_err};

/// [`DeploymentRepository`] on SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub struct SqlDeploymentRepository {
    db: DatabaseConnection,
}

impl SqlDeploymentRepository {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

impl TryFrom<Model> for Deployment {
    type Error = anyhow::Error;

    fn try_from(row: Model) -> Result<Self, Self::Error> {
        let id = row.id;
        let bad = |e: ephemera_domain::ValidationError| corrupt("deployments", id, e);
        Ok(Deployment::rehydrate(DeploymentRecord {
            id: DeploymentId::new(row.id).map_err(bad)?,
            environment_id: EnvironmentId::new(row.environment_id).map_err(bad)?,
            commit_sha: CommitSha::parse(&row.commit_sha).map_err(bad)?,
            commit_message: row.commit_message,
            delivery_id: row
                .delivery_id
                .as_deref()
                .map(DeliveryId::parse)
                .transpose()
                .map_err(bad)?,
            status: row.status.parse::<DeploymentStatus>().map_err(bad)?,
            started_at: row.started_at,
            completed_at: row.completed_at,
            error_message: row.error_message,
            logs: row.logs,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }))
    }
}

fn to_domain(row: Model) -> Result<Deployment, RepositoryError> {
    Deployment::try_from(row).map_err(RepositoryError::Unexpected)
}

/// Queues a deployment.
pub(crate) async fn insert<C: ConnectionTrait>(
    db: &C,
    new: NewDeployment,
    now: DateTime<Utc>,
) -> Result<Deployment, RepositoryError> {
    let row = ActiveModel {
        id: NotSet,
        environment_id: Set(new.environment_id.get()),
        commit_sha: Set(new.commit_sha.as_str().to_owned()),
        commit_message: Set(new.commit_message),
        status: Set(DeploymentStatus::Queued.as_str().to_owned()),
        started_at: Set(None),
        completed_at: Set(None),
        error_message: Set(None),
        logs: Set(String::new()),
        created_at: Set(now),
        updated_at: Set(now),
        github_deployment_id: Set(None),
        github_state: Set(None),
        github_commit_state: Set(None),
        github_check_run_id: Set(None),
        github_check_state: Set(None),
        delivery_id: Set(new.delivery_id.map(|d| d.to_string())),
    }
    .insert(db)
    .await
    .map_err(|e| {
        db_err(
            e,
            format!("queueing deployment for environment {}", new.environment_id),
        )
    })?;
    to_domain(row)
}

/// Cancels queued and in-progress deployments of the environment, but
/// `except`.
pub(crate) async fn cancel_active<C: ConnectionTrait>(
    db: &C,
    environment_id: EnvironmentId,
    except: Option<DeploymentId>,
    now: DateTime<Utc>,
) -> Result<u64, RepositoryError> {
    let mut update = cancelling(environment_id, now).filter(Column::Status.is_in([
        DeploymentStatus::Queued.as_str(),
        DeploymentStatus::InProgress.as_str(),
    ]));
    if let Some(keep) = except {
        update = update.filter(Column::Id.ne(keep.get()));
    }
    let result = update.exec(db).await.map_err(|e| {
        db_err(
            e,
            format!("cancelling superseded deployments of environment {environment_id}"),
        )
    })?;
    Ok(result.rows_affected)
}

/// The update that cancels the environment's deployments at `now`; each
/// caller narrows it to the statuses it cancels.
fn cancelling(environment_id: EnvironmentId, now: DateTime<Utc>) -> UpdateMany<Entity> {
    Entity::update_many()
        .col_expr(
            Column::Status,
            Expr::value(DeploymentStatus::Cancelled.as_str()),
        )
        .col_expr(Column::CompletedAt, Expr::value(now))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::EnvironmentId.eq(environment_id.get()))
}

/// queued -> cancelled for every queued deployment of the environment: a
/// newer commit (or the end of the PR) supersedes them.
pub(crate) async fn cancel_queued<C: ConnectionTrait>(
    db: &C,
    environment_id: EnvironmentId,
    now: DateTime<Utc>,
) -> Result<u64, RepositoryError> {
    let result = cancelling(environment_id, now)
        .filter(Column::Status.eq(DeploymentStatus::Queued.as_str()))
        .exec(db)
        .await
        .map_err(|e| {
            db_err(
                e,
                format!("cancelling queued deployments of environment {environment_id}"),
            )
        })?;
    Ok(result.rows_affected)
}

pub(crate) async fn update<C: ConnectionTrait>(
    db: &C,
    deployment: &Deployment,
) -> Result<(), RepositoryError> {
    ActiveModel {
        id: Set(deployment.id.get()),
        environment_id: Set(deployment.environment_id.get()),
        commit_sha: Set(deployment.commit_sha.as_str().to_owned()),
        commit_message: Set(deployment.commit_message.clone()),
        status: Set(deployment.status().as_str().to_owned()),
        started_at: Set(deployment.started_at()),
        completed_at: Set(deployment.completed_at()),
        error_message: Set(deployment.error_message().map(str::to_owned)),
        logs: Set(deployment.logs().to_owned()),
        created_at: Set(deployment.created_at),
        updated_at: Set(deployment.updated_at),
        // GitHub's id and what it was told are the outbox's to set.
        github_deployment_id: NotSet,
        github_state: NotSet,
        github_commit_state: NotSet,
        github_check_run_id: NotSet,
        github_check_state: NotSet,
        delivery_id: NotSet,
    }
    .update(db)
    .await
    .map_err(|e| db_err(e, format!("deployment {}", deployment.id)))?;
    Ok(())
}

pub(crate) async fn get<C: ConnectionTrait>(
    db: &C,
    id: DeploymentId,
) -> Result<Option<Deployment>, RepositoryError> {
    Entity::find_by_id(id.get())
        .one(db)
        .await
        .map_err(|e| db_err(e, format!("loading deployment {id}")))?
        .map(to_domain)
        .transpose()
}

/// The environment's newest deployment that is queued or in progress.
pub(crate) async fn active<C: ConnectionTrait>(
    db: &C,
    environment_id: EnvironmentId,
) -> Result<Option<Deployment>, RepositoryError> {
    Entity::find()
        .filter(Column::EnvironmentId.eq(environment_id.get()))
        .filter(Column::Status.is_in([
            DeploymentStatus::Queued.as_str(),
            DeploymentStatus::InProgress.as_str(),
        ]))
        .order_by_desc(Column::Id)
        .one(db)
        .await
        .map_err(|e| {
            db_err(
                e,
                format!("loading the active deployment of {environment_id}"),
            )
        })?
        .map(to_domain)
        .transpose()
}

/// Whether a deployment newer than `than` is queued for the environment.
pub(crate) async fn newer_queued<C: ConnectionTrait>(
    db: &C,
    environment_id: EnvironmentId,
    than: DeploymentId,
) -> Result<bool, RepositoryError> {
    let found = Entity::find()
        .filter(Column::EnvironmentId.eq(environment_id.get()))
        .filter(Column::Status.eq(DeploymentStatus::Queued.as_str()))
        .filter(Column::Id.gt(than.get()))
        .one(db)
        .await
        .map_err(|e| {
            db_err(
                e,
                format!("looking for newer deployments of {environment_id}"),
            )
        })?;
    Ok(found.is_some())
}

#[async_trait]
impl DeploymentRepository for SqlDeploymentRepository {
    async fn get(&self, id: DeploymentId) -> Result<Option<Deployment>, RepositoryError> {
        get(&self.db, id).await
    }

    async fn list_for_environment(
        &self,
        environment_id: EnvironmentId,
        page: PageRequest,
    ) -> Result<Vec<Deployment>, RepositoryError> {
        let mut query = Entity::find().filter(Column::EnvironmentId.eq(environment_id.get()));
        if let Some(cursor) = page.after {
            query = query.filter(Column::Id.lt(cursor.before_id));
        }
        crate::paging::page(
            &self.db,
            query.order_by_desc(Column::Id),
            page.fetch_limit(),
        )
        .await
        .map_err(|e| {
            db_err(
                e,
                format!("listing deployments of environment {environment_id}"),
            )
        })?
        .into_iter()
        .map(to_domain)
        .collect()
    }

    async fn insert(
        &self,
        new: NewDeployment,
        now: DateTime<Utc>,
    ) -> Result<Deployment, RepositoryError> {
        insert(&self.db, new, now).await
    }

    async fn update(&self, deployment: &Deployment) -> Result<(), RepositoryError> {
        update(&self.db, deployment).await
    }
}
