use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ephemera_domain::{GithubUser, GithubUserId, User};

use super::RepositoryError;

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Creates the user or refreshes what GitHub last said about them.
    async fn upsert(&self, user: GithubUser, now: DateTime<Utc>) -> Result<User, RepositoryError>;

    async fn get_by_github_id(&self, id: GithubUserId) -> Result<Option<User>, RepositoryError>;
}
