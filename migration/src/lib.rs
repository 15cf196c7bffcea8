//! ephemera's database schema as sea-orm-migration migrations, and the
//! `up | down [-n N] | status` commands shared by `ephemera migrate` and this
//! crate's own CLI (`cargo run -p migration -- ...`).
//!
//! Every migration has a working `down()`; the persistence tests run
//! up → down to zero → up on SQLite and PostgreSQL.

pub use sea_orm_migration::prelude::*;

mod cli;
mod m20261121_000001_create_users;
mod m20261121_000002_create_installations;
mod m20261121_000003_create_environments;
mod m20261121_000004_create_deployments;
mod m20261121_000005_create_webhook_deliveries;
mod m20261121_000006_webhook_ordering;
mod m20261121_000007_work_queue;
mod m20261121_000008_github_reports;
mod m20261121_000009_fork_trust;
mod m20261122_000010_policy_facts;
mod m20261122_000011_replay_guard;
mod m20261122_000012_repository_id;
mod m20261122_000013_github_ledger;
mod m20261122_000014_leases;
mod m20261204_000015_repository_rules;
mod m20261205_000016_preview_commands;
mod m20261205_000017_check_runs;
mod m20261205_000018_status_history;
mod m20261205_000019_idle_ttl_index;

pub use cli::{MigrateCommand, apply_pending, run};

#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_create_users::Migration),
            Box::new(m20261121_000002_create_installations::Migration),
            Box::new(m20261121_000003_create_environments::Migration),
            Box::new(m20261121_000004_create_deployments::Migration),
            Box::new(m20261121_000005_create_webhook_deliveries::Migration),
            Box::new(m20261121_000006_webhook_ordering::Migration),
            Box::new(m20261121_000007_work_queue::Migration),
            Box::new(m20261121_000008_github_reports::Migration),
            Box::new(m20261121_000009_fork_trust::Migration),
            Box::new(m20261122_000010_policy_facts::Migration),
            Box::new(m20261122_000011_replay_guard::Migration),
            Box::new(m20261122_000012_repository_id::Migration),
            Box::new(m20261122_000013_github_ledger::Migration),
            Box::new(m20261122_000014_leases::Migration),
            Box::new(m20261204_000015_repository_rules::Migration),
            Box::new(m20261205_000016_preview_commands::Migration),
            Box::new(m20261205_000017_check_runs::Migration),
            Box::new(m20261205_000018_status_history::Migration),
            Box::new(m20261205_000019_idle_ttl_index::Migration),
        ]
    }
}
