use chrono::{DateTime, Utc};

use crate::GithubUserId;

/// A GitHub user as a webhook names them; the input of an upsert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubUser {
    pub github_id: GithubUserId,
    pub login: String,
    pub email: Option<String>,
    pub avatar_url: Option<String>,
}

/// A GitHub user ephemera has seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub github_id: GithubUserId,
    pub login: String,
    pub email: Option<String>,
    pub avatar_url: Option<String>,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
