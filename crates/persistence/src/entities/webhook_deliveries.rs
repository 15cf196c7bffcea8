use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub delivery_id: String,
    pub event: String,
    pub action: Option<String>,
    pub repository_full_name: Option<String>,
    pub installation_id: Option<i64>,
    pub outcome: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub reason: Option<String>,
    pub attempts: i32,
    pub received_at: DateTimeUtc,
    pub updated_at: Option<DateTimeUtc>,
    /// Hex SHA-256 of the body; NULL on replays and bodiless failures.
    #[sea_orm(unique)]
    pub body_sha256: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
