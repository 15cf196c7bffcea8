use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "environments")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub repository_full_name: String,
    pub repository_name: String,
    pub pr_number: i64,
    #[sea_orm(column_type = "Text")]
    pub pr_title: String,
    pub branch_name: String,
    pub commit_sha: String,
    #[sea_orm(unique)]
    pub namespace: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub environment_url: Option<String>,
    pub status: String,
    pub installation_id: Option<i64>,
    pub owner_github_id: Option<i64>,
    pub owner_login: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error_message: Option<String>,
    pub last_deployed_at: Option<DateTimeUtc>,
    pub pr_updated_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub destroyed_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub status_reason: Option<String>,
    pub work_due_at: Option<DateTimeUtc>,
    pub work_attempts: i32,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTimeUtc>,
    pub github_comment_id: Option<i64>,
    pub trusted_sha: Option<String>,
    pub is_fork: bool,
    pub draft: bool,
    /// The PR's label names, a JSON array.
    #[sea_orm(column_type = "Text")]
    pub labels: String,
    /// GitHub's repository id; NULL on rows from before it was kept.
    pub repository_id: Option<i64>,
    /// The PR's base branch; empty on rows from before it was kept.
    #[sea_orm(column_type = "Text")]
    pub base_ref: String,
    pub waiting_since: Option<DateTimeUtc>,
    pub idle_ttl_seconds: Option<i64>,
    /// What the bounds refused of the repository's file, a JSON array.
    #[sea_orm(column_type = "Text")]
    pub config_notes: String,
    pub sleep_after_seconds: Option<i64>,
    /// The commit a writer asked a preview of (`/preview deploy`).
    pub deploy_requested_sha: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::deployments::Entity")]
    Deployments,
}

impl Related<super::deployments::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Deployments.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
