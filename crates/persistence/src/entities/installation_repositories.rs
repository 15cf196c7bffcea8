use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "installation_repositories")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub installation_id: i64,
    pub repository_github_id: i64,
    pub full_name: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::installations::Entity",
        from = "Column::InstallationId",
        to = "super::installations::Column::Id",
        on_delete = "Cascade"
    )]
    Installation,
}

impl Related<super::installations::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Installation.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
