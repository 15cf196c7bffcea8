//! What GitHub was last told about each deployment: the state of its GitHub
//! Deployment and the commit status of its commit. Reports to GitHub bring
//! every deployment to its final state from these, so coalescing reports
//! never loses a commit's or a deployment's truth.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000004_create_deployments::Deployments;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Added {
    GithubState,
    GithubCommitState,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Added::GithubState, Added::GithubCommitState] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Deployments::Table)
                        .add_column(string_len_null(column, 16))
                        .to_owned(),
                )
                .await?;
        }
        // Deployments from before: take their final states as told, so an
        // upgrade does not replay history to GitHub. Only deployments still
        // under way, and each environment's newest, are reported afresh.
        let db = manager.get_connection();
        db.execute_unprepared(
            "UPDATE deployments SET github_commit_state = CASE status \
               WHEN 'success' THEN 'success' WHEN 'failed' THEN 'failure' \
               WHEN 'cancelled' THEN 'error' ELSE NULL END",
        )
        .await?;
        db.execute_unprepared(
            "UPDATE deployments SET github_state = CASE \
               WHEN id NOT IN (SELECT MAX(id) FROM deployments GROUP BY environment_id) \
                 OR status = 'cancelled' THEN 'inactive' \
               WHEN status = 'success' THEN 'success' \
               WHEN status = 'failed' THEN 'failure' ELSE NULL END",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Added::GithubState, Added::GithubCommitState] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Deployments::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
