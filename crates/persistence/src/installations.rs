use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ephemera_application::ports::{InstalledRepositories, RepositoryError};
use ephemera_domain::{
    Installation, InstallationId, InstallationStatus, InstalledRepository as Repo,
    RepositoryFullName,
};
use sea_orm::sea_query::{Expr, ExprTrait, Func, OnConflict};
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    JoinType, ModelTrait, QueryFilter, QueryOrder, QuerySelect, RelationTrait, Set,
};

use crate::entities::{installation_repositories as repos, installations};
use crate::error::{corrupt, db_err};

/// The installations tables on SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub struct SqlInstallationRepository {
    db: DatabaseConnection,
}

impl SqlInstallationRepository {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

pub(crate) async fn status<C: ConnectionTrait>(
    db: &C,
    id: InstallationId,
) -> Result<Option<InstallationStatus>, RepositoryError> {
    installations::Entity::find_by_id(id.get())
        .one(db)
        .await
        .map_err(|e| db_err(e, format!("loading installation {id}")))?
        .map(|row| {
            row.status
                .parse::<InstallationStatus>()
                .map_err(|e| RepositoryError::Unexpected(corrupt("installations", row.id, e)))
        })
        .transpose()
}

pub(crate) async fn upsert<C: ConnectionTrait>(
    db: &C,
    id: InstallationId,
    account_login: &str,
    status: InstallationStatus,
    now: DateTime<Utc>,
) -> Result<(), RepositoryError> {
    installations::Entity::insert(installations::ActiveModel {
        id: Set(id.get()),
        account_login: Set(account_login.to_owned()),
        status: Set(status.as_str().to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
        event_updated_at: Set(None),
    })
    .on_conflict(
        OnConflict::column(installations::Column::Id)
            .update_columns([
                installations::Column::AccountLogin,
                installations::Column::Status,
                installations::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec(db)
    .await
    .map_err(|e| db_err(e, format!("recording installation {id}")))?;
    Ok(())
}

/// `installation.updated_at` of the newest installation event applied.
pub(crate) async fn seen_at<C: ConnectionTrait>(
    db: &C,
    id: InstallationId,
) -> Result<Option<DateTime<Utc>>, RepositoryError> {
    Ok(installations::Entity::find_by_id(id.get())
        .one(db)
        .await
        .map_err(|e| db_err(e, format!("loading installation {id}")))?
        .and_then(|row| row.event_updated_at))
}

/// Moves the newest applied installation event's time forward to `at`.
pub(crate) async fn mark_seen<C: ConnectionTrait>(
    db: &C,
    id: InstallationId,
    at: DateTime<Utc>,
) -> Result<(), RepositoryError> {
    installations::Entity::update_many()
        .col_expr(installations::Column::EventUpdatedAt, Expr::value(at))
        .filter(installations::Column::Id.eq(id.get()))
        .filter(
            Condition::any()
                .add(installations::Column::EventUpdatedAt.is_null())
                .add(installations::Column::EventUpdatedAt.lt(at)),
        )
        .exec(db)
        .await
        .map_err(|e| db_err(e, format!("recording installation {id}")))?;
    Ok(())
}

pub(crate) async fn add_repositories<C: ConnectionTrait>(
    db: &C,
    id: InstallationId,
    repositories: &[Repo],
) -> Result<(), RepositoryError> {
    if repositories.is_empty() {
        return Ok(());
    }
    let rows = repositories.iter().map(|r| repos::ActiveModel {
        id: NotSet,
        installation_id: Set(id.get()),
        repository_github_id: Set(r.github_id),
        full_name: Set(r.full_name.as_str().to_owned()),
    });
    repos::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([
                repos::Column::InstallationId,
                repos::Column::RepositoryGithubId,
            ])
            .update_column(repos::Column::FullName)
            .to_owned(),
        )
        .exec(db)
        .await
        .map_err(|e| db_err(e, format!("recording repositories of installation {id}")))?;
    Ok(())
}

pub(crate) async fn remove_repositories<C: ConnectionTrait>(
    db: &C,
    id: InstallationId,
    repository_github_ids: Vec<i64>,
) -> Result<(), RepositoryError> {
    repos::Entity::delete_many()
        .filter(repos::Column::InstallationId.eq(id.get()))
        .filter(repos::Column::RepositoryGithubId.is_in(repository_github_ids))
        .exec(db)
        .await
        .map_err(|e| db_err(e, format!("removing repositories of installation {id}")))?;
    Ok(())
}

/// Read and written by the webhook transaction; these stand-alone calls serve tests and tools.
impl SqlInstallationRepository {
    pub async fn get(&self, id: InstallationId) -> Result<Option<Installation>, RepositoryError> {
        let context = format!("loading installation {id}");
        let Some(row) = installations::Entity::find_by_id(id.get())
            .one(&self.db)
            .await
            .map_err(|e| db_err(e, context.clone()))?
        else {
            return Ok(None);
        };
        let repositories = row
            .find_related(repos::Entity)
            .order_by_asc(repos::Column::FullName)
            .all(&self.db)
            .await
            .map_err(|e| db_err(e, context))?
            .into_iter()
            .map(|r| {
                Ok(Repo {
                    github_id: r.repository_github_id,
                    full_name: RepositoryFullName::parse(&r.full_name)
                        .map_err(|e| corrupt("installation_repositories", r.id, e))?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Some(Installation {
            id,
            account_login: row.account_login,
            status: row
                .status
                .parse::<InstallationStatus>()
                .map_err(|e| corrupt("installations", row.id, e))?,
            repositories,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }))
    }

    pub async fn upsert(
        &self,
        id: InstallationId,
        account_login: String,
        status: InstallationStatus,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        upsert(&self.db, id, &account_login, status, now).await
    }

    pub async fn add_repositories(
        &self,
        id: InstallationId,
        repositories: Vec<Repo>,
    ) -> Result<(), RepositoryError> {
        add_repositories(&self.db, id, &repositories).await
    }

    pub async fn remove_repositories(
        &self,
        id: InstallationId,
        repository_github_ids: Vec<i64>,
    ) -> Result<(), RepositoryError> {
        remove_repositories(&self.db, id, repository_github_ids).await
    }
}

#[async_trait]
impl InstalledRepositories for SqlInstallationRepository {
    async fn installation_of(
        &self,
        repository: &RepositoryFullName,
    ) -> Result<Option<InstallationId>, RepositoryError> {
        let context = format!("finding the installation of {repository}");
        // The oldest active installation, should two list the repository.
        let row = repos::Entity::find()
            .join(JoinType::InnerJoin, repos::Relation::Installation.def())
            .filter(installations::Column::Status.eq(InstallationStatus::Active.as_str()))
            .filter(
                Expr::expr(Func::lower(Expr::col((
                    repos::Entity,
                    repos::Column::FullName,
                ))))
                .eq(repository.key()),
            )
            .order_by_asc(repos::Column::InstallationId)
            .one(&self.db)
            .await
            .map_err(|e| db_err(e, context))?;
        row.map(|r| {
            InstallationId::new(r.installation_id).map_err(|e| {
                RepositoryError::Unexpected(corrupt("installation_repositories", r.id, e))
            })
        })
        .transpose()
    }
}
