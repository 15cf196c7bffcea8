use chrono::{DateTime, Utc};
use ephemera_application::ports::RepositoryError;
use ephemera_domain::{GithubUser, GithubUserId, User};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, Set,
};

use crate::entities::users::{ActiveModel, Column, Entity, Model};
use crate::error::{corrupt, db_err};

/// The users table on SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub struct SqlUserRepository {
    db: DatabaseConnection,
}

impl SqlUserRepository {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

impl TryFrom<Model> for User {
    type Error = anyhow::Error;

    fn try_from(row: Model) -> Result<Self, Self::Error> {
        Ok(User {
            id: row.id,
            github_id: GithubUserId::new(row.github_id).map_err(|e| corrupt("users", row.id, e))?,
            login: row.github_login,
            email: row.email,
            avatar_url: row.avatar_url,
            is_active: row.is_active,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// Creates the user or refreshes what GitHub last said about them, in one
/// statement, so concurrent deliveries naming the same user never race into
/// a unique violation. A payload without an email (most of them) keeps the
/// one already known.
///
/// Nothing is written when the stored user already says the same (a plain
/// read first): a burst of deliveries from one sender (a bot, or whoever
/// merged to main and made every PR rebase) would otherwise all wait on
/// that user's row lock, one transaction after another.
pub(crate) async fn upsert<C: ConnectionTrait>(
    db: &C,
    user: &GithubUser,
    now: DateTime<Utc>,
) -> Result<(), RepositoryError> {
    let stored = Entity::find()
        .filter(Column::GithubId.eq(user.github_id.get()))
        .one(db)
        .await
        .map_err(|e| db_err(e, format!("loading GitHub user {}", user.github_id)))?;
    let same = |known: &Option<String>, said: &Option<String>| said.is_none() || said == known;
    if stored.is_some_and(|row| {
        row.github_login == user.login
            && row.is_active
            && same(&row.email, &user.email)
            && same(&row.avatar_url, &user.avatar_url)
    }) {
        return Ok(());
    }
    Entity::insert(ActiveModel {
        id: NotSet,
        github_id: Set(user.github_id.get()),
        github_login: Set(user.login.clone()),
        email: Set(user.email.clone()),
        avatar_url: Set(user.avatar_url.clone()),
        is_active: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(Column::GithubId)
            .update_columns([Column::GithubLogin, Column::UpdatedAt, Column::IsActive])
            .value(
                Column::Email,
                Expr::cust("COALESCE(excluded.email, users.email)"),
            )
            .value(
                Column::AvatarUrl,
                Expr::cust("COALESCE(excluded.avatar_url, users.avatar_url)"),
            )
            .to_owned(),
    )
    .exec(db)
    .await
    .map_err(|e| db_err(e, format!("recording GitHub user {}", user.github_id)))?;
    Ok(())
}

/// Read and written by the webhook transaction; these stand-alone calls serve tests and tools.
impl SqlUserRepository {
    pub async fn upsert(
        &self,
        user: GithubUser,
        now: DateTime<Utc>,
    ) -> Result<User, RepositoryError> {
        upsert(&self.db, &user, now).await?;
        self.get_by_github_id(user.github_id)
            .await?
            .ok_or_else(|| RepositoryError::NotFound(format!("GitHub user {}", user.github_id)))
    }
    pub async fn get_by_github_id(
        &self,
        id: GithubUserId,
    ) -> Result<Option<User>, RepositoryError> {
        Entity::find()
            .filter(Column::GithubId.eq(id.get()))
            .one(&self.db)
            .await
            .map_err(|e| db_err(e, format!("loading GitHub user {id}")))?
            .map(|row| User::try_from(row).map_err(RepositoryError::Unexpected))
            .transpose()
    }
}
