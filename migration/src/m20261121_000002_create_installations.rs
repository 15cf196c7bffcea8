use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub enum Installations {
    Table,
    /// GitHub's own installation id.
    Id,
    AccountLogin,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
pub enum InstallationRepositories {
    Table,
    Id,
    InstallationId,
    RepositoryGithubId,
    FullName,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Installations::Table)
                    .col(big_integer(Installations::Id).primary_key())
                    .col(string(Installations::AccountLogin))
                    .col(string_len(Installations::Status, 16))
                    .col(timestamp_with_time_zone(Installations::CreatedAt))
                    .col(timestamp_with_time_zone(Installations::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(InstallationRepositories::Table)
                    .col(big_pk_auto(InstallationRepositories::Id))
                    .col(big_integer(InstallationRepositories::InstallationId))
                    .col(big_integer(InstallationRepositories::RepositoryGithubId))
                    .col(string(InstallationRepositories::FullName))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_installation_repositories_installation")
                            .from(
                                InstallationRepositories::Table,
                                InstallationRepositories::InstallationId,
                            )
                            .to(Installations::Table, Installations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_installation_repositories_installation_repository")
                    .table(InstallationRepositories::Table)
                    .col(InstallationRepositories::InstallationId)
                    .col(InstallationRepositories::RepositoryGithubId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_installation_repositories_full_name")
                    .table(InstallationRepositories::Table)
                    .col(InstallationRepositories::FullName)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(InstallationRepositories::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Installations::Table).to_owned())
            .await
    }
}
