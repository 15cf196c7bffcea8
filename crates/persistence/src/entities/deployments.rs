use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deployments")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub environment_id: i64,
    pub commit_sha: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub commit_message: Option<String>,
    pub status: String,
    pub started_at: Option<DateTimeUtc>,
    pub completed_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error_message: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub logs: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub github_deployment_id: Option<i64>,
    /// The GitHub Deployment state last reported (in_progress, success,
    /// failure, inactive).
    pub github_state: Option<String>,
    /// The commit status last reported for this deployment's commit.
    pub github_commit_state: Option<String>,
    /// The webhook delivery that queued it.
    pub delivery_id: Option<String>,
    /// The "ephemera preview" check run of its commit, once created.
    pub github_check_run_id: Option<i64>,
    /// What the check run was last told (queued, in_progress, a
    /// conclusion), or `off` when checks are not reported for it.
    pub github_check_state: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::environments::Entity",
        from = "Column::EnvironmentId",
        to = "super::environments::Column::Id",
        on_delete = "Cascade"
    )]
    Environment,
}

impl Related<super::environments::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Environment.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
