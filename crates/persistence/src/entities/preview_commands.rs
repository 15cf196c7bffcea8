use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "preview_commands")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// GitHub's id of the comment: one row per comment. `None` for a
    /// check run's button.
    #[sea_orm(unique)]
    pub comment_id: Option<i64>,
    pub delivery_id: String,
    pub installation_id: Option<i64>,
    pub repository_full_name: String,
    pub repository_id: i64,
    pub pr_number: i64,
    pub author_login: String,
    /// `/preview <word>` as written (the word lowercased).
    pub command: String,
    /// `pending`, then `done`, `refused` or `failed`.
    pub status: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub outcome: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTimeUtc>,
    /// A button's check run, and the commit it was clicked on.
    pub check_run_id: Option<i64>,
    pub head_sha: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
